/// FedAvg / FedIT: average the (zero-padded) factors separately, `Ah = sum w_u A_u`,
/// `Bh = sum w_u Bs_u`. In general `Bh Ah != T`: that gap is what the reports show.
public enum FedAvg {
  public static func aggregate(_ factors: LayerFactors, geometry: LayerGeometry) -> LayerEstimate {
    combine(factors, geometry: geometry, p: factors.weights, q: factors.weights)
  }

  /// `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u` (shared by FedAvg and FLoRA-NA).
  static func combine(_ factors: LayerFactors, geometry: LayerGeometry, p: [Double], q: [Double]) -> LayerEstimate {
    let ca = LayerGeometry.blocks(p, rank: geometry.rank).transposed
    let cb = LayerGeometry.blocks(q, rank: geometry.rank)
    return LayerEstimate(
      a: ca * geometry.stackedA, b: geometry.stackedB * cb, residual: geometry.residualNorm(cb: cb, ca: ca), p: p, q: q)
  }
}
