/// The aggregation rules of `aggregation.md`.
public enum Method: String, Sendable, CaseIterable {
  case fedavg
  case floraNA = "flora-na"
  case svd
  case stack
  case exact
  case fedex

  /// Accepts the documented aliases (`fedit` for FedAvg).
  public init?(name: String) {
    switch name.lowercased() {
    case "fedavg", "fedit": self = .fedavg
    case "flora-na", "florana", "flora_na": self = .floraNA
    default:
      guard let method = Method(rawValue: name.lowercased()) else { return nil }
      self = method
    }
  }

  /// Whether the rule writes merged base weights (and so needs `--base`).
  public var needsBase: Bool { self == .exact || self == .fedex }
}

/// One rule's result for one layer: factors `Bh` `[d, R]`, `Ah` `[R, k]` with their scale folded
/// in, and how far `Bh Ah` is from the ideal update.
public struct LayerEstimate: Sendable {
  public let a: Matrix
  public let b: Matrix
  /// `||T - Bh Ah||_F` (nil when the merge computes no errors).
  public let residual: Double?
  /// FLoRA-NA's coefficients and iterations, for reports.
  public var p: [Double]? = nil
  public var q: [Double]? = nil
  public var iterations: Int? = nil

  public var rank: Int { a.rows }
}
