/// FedAvg / FedIT: average the (zero-padded) factors separately, `Ah = sum w_u A_u`,
/// `Bh = sum w_u Bs_u`. In general `Bh Ah != T`: that gap is what the reports show.
public enum FedAvg {
  public static func aggregate(_ factors: LayerFactors, geometry: LayerGeometry) -> LayerEstimate {
    combine(factors, geometry: geometry, p: factors.weights, q: factors.weights)
  }

  /// `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u` (shared by FedAvg and FLoRA-NA): weighted sums of
  /// the zero-padded factors (a GEMM with the block coefficient matrices would do r times the work).
  static func combine(_ factors: LayerFactors, geometry: LayerGeometry, p: [Double], q: [Double]) -> LayerEstimate {
    let r = geometry.rank
    var a = Matrix(zeros: r, factors.k)
    var b = Matrix(zeros: factors.d, r)
    for u in factors.a.indices {
      let (au, bu, ru) = (factors.a[u], factors.bs[u], factors.a[u].rows)
      for i in 0..<(ru * factors.k) { a.values[i] += p[u] * au.values[i] }  // A_u fills the top ru rows
      for row in 0..<factors.d {
        for j in 0..<ru { b.values[row * r + j] += q[u] * bu.values[row * ru + j] }  // Bs_u the left ru columns
      }
    }
    let ca = LayerGeometry.blocks(p, rank: r).transposed
    let cb = LayerGeometry.blocks(q, rank: r)
    return LayerEstimate(a: a, b: b, residual: geometry.residualNorm(cb: cb, ca: ca), p: p, q: q)
  }
}
