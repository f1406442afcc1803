/// FLoRA stacking: `Bh = [w_1 Bs_1, ..., w_U Bs_U]`, `Ah = [A_1; ...; A_U]`, rank `sum r_u`.
/// Exact (error 0 up to rounding); handles different ranks natively.
public struct Stack: AggregationRule {
  public init() {}

  public static func aggregate(_ factors: ModuleFactors) -> ModuleEstimate {
    ModuleEstimate(a: factors.stackedA(), b: factors.stackedB(coefficients: factors.weights), residual: 0)
  }

  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.reduce(0, +) }

  public func aggregate(_ factors: ModuleFactors, geometry: ModuleGeometry?, rank: Int) -> ModuleEstimate {
    let stacked = Self.aggregate(factors)
    return geometry == nil ? ModuleEstimate(a: stacked.a, b: stacked.b, residual: nil) : stacked
  }
}
