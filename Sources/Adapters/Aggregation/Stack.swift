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
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// The stacked factors, weights folded into `B`, with residual 0.
  public static func aggregate(_ factors: ModuleFactors) -> ModuleEstimate {
    let (a, b) = factors.stacked(coefficients: factors.weights)
    return ModuleEstimate(a: a, b: b, residual: 0)
  }

  /// The clients' ranks added up.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.reduce(0, +) }

  /// The stacked factors; residual 0 when the geometry is given (errors computed), nil otherwise.
  public func solve(_ input: FactorsInput) -> ModuleEstimate {
    let stacked = Self.aggregate(input.factors)
    return input.geometry == nil ? ModuleEstimate(a: stacked.a, b: stacked.b, residual: nil) : stacked
  }
}
