/// FLoRA stacking: `Bh = [w_1 Bs_1, ..., w_U Bs_U]`, `Ah = [A_1; ...; A_U]`, rank `sum r_u`.
/// Exact (error 0 up to rounding); handles different ranks natively.
public struct Stack: AggregationRule {
  public init() {}

  public static func aggregate(_ factors: LayerFactors) -> LayerEstimate {
    LayerEstimate(a: factors.stackedA(), b: factors.stackedB(coefficients: factors.weights), residual: 0)
  }

  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.reduce(0, +) }

  public func aggregate(_ factors: LayerFactors, geometry: LayerGeometry?, rank: Int) -> LayerEstimate {
    let stacked = Self.aggregate(factors)
    return geometry == nil ? LayerEstimate(a: stacked.a, b: stacked.b, residual: nil) : stacked
  }
}
