extension AggregationMethod {
  /// FLoRA stacking (``Stack``).
  public static let stack = AggregationMethod(Stack.self)
}

/// FLoRA stacking: `Bh = [w_1 Bs_1, ..., w_U Bs_U]`, `Ah = [A_1; ...; A_U]`, rank `sum r_u`.
/// Exact (error 0 up to rounding); handles different ranks natively.
public struct Stack: MergeMethod {
  /// `stack`.
  public static let name = "stack"

  /// Stacking has no options.
  public init() {}

  /// Stacking has no options.
  /// - Parameters:
  ///   - set: the clients (unused).
  ///   - options: the merge's options (unused).
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// The stacked factors, weights folded into `B`, with residual 0.
  /// - Parameter factors: the module's stacked factors.
  /// - Returns: `[A_1; ...; A_U]` `[sum r_u, k]` and `[w_1 Bs_1, ..., w_U Bs_U]` `[d, sum r_u]`.
  /// - Complexity: O(sum r_u (d + k)).
  public static func aggregate(_ factors: ModuleFactors) -> ModuleEstimate {
    let (a, b) = factors.stacked(coefficients: factors.weights)
    return ModuleEstimate(a: a, b: b, residual: 0)
  }

  /// The clients' ranks added up.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the sum of `ranks`.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.reduce(0, +) }

  /// The stacked factors; residual 0 when the geometry is given (errors computed), nil otherwise.
  /// - Parameter input: the module's factors, and its geometry when errors are computed.
  /// - Returns: the stacked factors.
  /// - Complexity: O(sum r_u (d + k)).
  public func solve(_ input: FactorsInput) -> ModuleEstimate {
    let stacked = Self.aggregate(input.factors)
    return input.geometry == nil ? ModuleEstimate(a: stacked.a, b: stacked.b, residual: nil) : stacked
  }
}
