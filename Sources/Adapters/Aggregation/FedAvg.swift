/// FedAvg / FedIT: average the (zero-padded) factors separately, `Ah = sum w_u A_u`,
/// `Bh = sum w_u Bs_u`. In general `Bh Ah != T`: that gap is what the reports show.
public enum FedAvg {
  public static func aggregate(_ factors: LayerFactors, geometry: LayerGeometry) -> LayerEstimate {
    combine(factors, geometry: geometry, p: factors.weights, q: factors.weights)
  }

  /// `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u` (shared by FedAvg and FLoRA-NA).
  static func combine(_ factors: LayerFactors, geometry: LayerGeometry, p: [Double], q: [Double]) -> LayerEstimate {
    let r = geometry.rank
    var a = Matrix(zeros: r, factors.k)
    var b = Matrix(zeros: factors.d, r)
    for u in factors.a.indices {
      let (au, bu) = (factors.a[u], factors.bs[u])
      for i in 0..<au.rows { for j in 0..<factors.k { a[i, j] += p[u] * au[i, j] } }
      for i in 0..<factors.d { for j in 0..<bu.cols { b[i, j] += q[u] * bu[i, j] } }
    }
    return LayerEstimate(a: a, b: b, residual: geometry.residualNorm(p: p, q: q), p: p, q: q)
  }
}
