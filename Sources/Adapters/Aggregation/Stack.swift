/// FLoRA stacking: `Bh = [w_1 Bs_1, ..., w_U Bs_U]`, `Ah = [A_1; ...; A_U]`, rank `sum r_u`.
/// Exact (error 0 up to rounding); handles different ranks natively.
public enum Stack {
  public static func aggregate(_ factors: LayerFactors) -> LayerEstimate {
    LayerEstimate(a: factors.stackedA(), b: factors.stackedB(coefficients: factors.weights), residual: 0)
  }
}
