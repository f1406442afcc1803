/// The aggregation rules of `aggregation.md`.
public enum AggregationMethod: String, Sendable, CaseIterable {
  case fedavg
  case floraNA = "flora-na"
  case svd
  case stack
  case exact
  case fedex

  /// The method named `name` or one of its ``aliases``, in any case, with or without hyphens
  /// and underscores (`flora-na`, `florana`, `FLORA_NA`).
  public init?(name: String) {
    func plain(_ name: String) -> String { name.lowercased().filter { $0 != "-" && $0 != "_" } }
    let wanted = plain(name)
    guard let method = Self.allCases.first(where: { ([$0.rawValue] + $0.aliases).map(plain).contains(wanted) }) else {
      return nil
    }
    self = method
  }

  /// Other names the method is known by: `fedit` for FedAvg, the FedIT paper's name.
  public var aliases: [String] { self == .fedavg ? ["fedit"] : [] }

  /// Whether the rule writes merged base weights (and so needs `--base`).
  public var needsBase: Bool { self == .exact || self == .fedex }
}

extension AggregationMethod {
  /// Whether the rule's factors come from the Gram blocks (so its errors come for free); the
  /// others are fixed-coefficient sums, which a merge without errors computes alone.
  public var solvesOnGrams: Bool { self == .floraNA || self == .svd }
}

extension AggregationMethod {
  /// Whether the rule averages factors of one rank, zero-padding smaller ones (fedavg, flora-na,
  /// and fedex's FedAvg adapter); svd and stack take every rank as it is.
  public var zeroPadsRanks: Bool { self == .fedavg || self == .floraNA || self == .fedex }
}
