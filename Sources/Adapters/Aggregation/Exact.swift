extension AggregationMethod {
  /// The ideal update folded into the base (``Exact``).
  public static let exact = AggregationMethod(Exact.self)
}

/// `exact`: `W = W0 + T` folded into the base, `T` as one GEMM of the stacked factors (the
/// ``Stack`` factors), fp32 accumulation, one rounding. Writes a merged base, no adapter.
public struct Exact: MergeMethod {
  /// `exact`.
  public static let name = "exact"
  /// A merged base only.
  public static let writes = MethodOutput.base

  /// Exact has no options.
  public init() {}

  /// Exact has no options.
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// The stack's rank: the clients' ranks added up.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    Stack().outputRank(clientRanks: ranks, d: d, k: k)
  }

  /// The stacked factors, whose product is `T`.
  public func solve(_ input: FactorsInput) -> ModuleEstimate { Stack().solve(input) }
}
