/// The optimal rank-`R` estimate (Eckart-Young): thin QR of the stacked factors
/// `Bst = Qb Rb`, `Ast^T = Qa Ra`, SVD of the small core `Rb Ra^T = Uc S Vc^T`, balanced split
/// `Bh = Qb Uc_R S_R^(1/2)`, `Ah = S_R^(1/2) Vc_R^T Qa^T`. Never forms `T`.
public enum SVDOptimal {
  public static func aggregate(_ factors: LayerFactors, geometry: LayerGeometry, rank: Int) -> LayerEstimate {
    let weighted = factors.stackedB(coefficients: factors.weights)
    let (qb, rb) = LinearAlgebra.thinQR(weighted)
    let (qa, ra) = LinearAlgebra.thinQR(factors.stackedA().transposed)
    let (uc, s, vt) = LinearAlgebra.svd(rb * ra.transposed)
    let r = min(rank, s.count)
    var left = uc.columns(0..<r)
    var right = vt.rows(0..<r)
    for i in 0..<r {
      let root = s[i].squareRoot()
      for row in 0..<left.rows { left[row, i] *= root }
      for col in 0..<right.cols { right[i, col] *= root }
    }
    var b = qb * left
    var a = right * qa.transposed
    if r < rank {
      // Fewer singular values than asked for (tiny layers): pad with zero components.
      b = Matrix(rows: b.rows, cols: rank, values: (0..<b.rows).flatMap { i in (0..<rank).map { j in j < r ? b[i, j] : 0 } })
      a = Matrix(rows: rank, cols: a.cols, values: a.values + [Double](repeating: 0, count: (rank - r) * a.cols))
    }
    return LayerEstimate(a: a, b: b, residual: s.dropFirst(r).reduce(0) { $0 + $1 * $1 }.squareRoot())
  }
}
