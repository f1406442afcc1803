/// The aggregation rules of `aggregation.md`.
public enum AggregationMethod: String, Sendable, CaseIterable {
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
      guard let method = AggregationMethod(rawValue: name.lowercased()) else { return nil }
      self = method
    }
  }

  /// Whether the rule writes merged base weights (and so needs `--base`).
  public var needsBase: Bool { self == .exact || self == .fedex }
}

extension AggregationMethod {
  /// Whether the rule's factors come from the Gram blocks (so its errors come for free); the
  /// others are fixed-coefficient sums, which a merge without errors computes alone.
  public var solvesOnGrams: Bool { self == .floraNA || self == .svd }
}
