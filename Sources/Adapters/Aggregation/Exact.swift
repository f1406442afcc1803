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
  /// - Parameters:
  ///   - set: the clients (unused).
  ///   - options: the merge's options (unused).
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// The stack's rank: the clients' ranks added up.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the sum of `ranks`.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    Stack().outputRank(clientRanks: ranks, d: d, k: k)
  }

  /// The stacked factors, whose product is `T` (folded into the base as one GEMM when written).
  /// - Parameter input: the module's factors, and its geometry when errors are computed.
  /// - Returns: `[A_1; ...; A_U]` and `[w_1 Bs_1, ..., w_U Bs_U]`; residual 0 with the geometry, nil
  ///   without.
  /// - Complexity: O(sum r_u (d + k)).
  public func solve(_ input: FactorsInput) -> ModuleEstimate { Stack().solve(input) }
}
