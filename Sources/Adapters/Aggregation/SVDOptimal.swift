/// The optimal rank-`R` estimate (Eckart-Young), never forming `T`. The stacked factors
/// `Bst = Bs W` and `Ast^T` are written `Bs = Qb Rb`, `Ast^T = Qa Ra` with the R factors taken
/// from the fp64 Gram blocks (`Rb^T Rb = Bs^T Bs`: a QR factor up to a rotation, at a fraction of
/// the cost of a Householder QR of the `d x Ur` stack), so `T = Qb (Rb W Ra^T) Qa^T`. The SVD of
/// the small core `Uc S Vc^T` gives the balanced split `Bh = Qb Uc_R S_R^(1/2)`,
/// `Ah = S_R^(1/2) Vc_R^T Qa^T`, with `Qb = Bs Rb^+` and `Qa^T = Ra^+T Ast`. The error reported is
/// that of the factors as computed: the floor, plus rounding of about 1e-8 of `||T||`.
public struct SVDOptimal: AggregationRule {
  /// The rank asked for (`--rank`); the clients' largest by default.
  public let rank: Int?

  public init(rank: Int?) { self.rank = rank }

  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    min(rank ?? ranks.max() ?? 0, d, k, ranks.reduce(0, +))
  }

  public func aggregate(_ factors: LayerFactors, geometry: LayerGeometry?, rank: Int) -> LayerEstimate {
    guard let geometry else { preconditionFailure("svd solves on the Gram blocks: its merge always computes them") }
    return Self.aggregate(factors, geometry: geometry, rank: rank)
  }

  public static func aggregate(_ factors: LayerFactors, geometry g: LayerGeometry, rank: Int) -> LayerEstimate {
    // Eigen roots here, not the geometry's Cholesky ones: the split needs their pseudo-inverses.
    let (ra, raInverse) = LinearAlgebra.gramRoot(g.ka)
    let (rb, rbInverse) = LinearAlgebra.gramRoot(g.kb)
    let (uc, s, vt) = LinearAlgebra.svd(rb * g.weightMatrix * ra.transposed)
    let r = min(rank, s.count)
    var left = Matrix(zeros: uc.rows, rank)
    var right = Matrix(zeros: rank, vt.cols)
    for i in 0..<r {
      let root = s[i].squareRoot()
      for row in 0..<uc.rows { left[row, i] = uc[row, i] * root }
      for col in 0..<vt.cols { right[i, col] = vt[i, col] * root }
    }
    // Components beyond the available singular values (tiny layers) stay zero.
    let cb = rbInverse * left
    let ca = right * raInverse.transposed
    // The residual of the factors as written (the floor plus the split's rounding).
    return LayerEstimate(
      a: ca * factors.stackedA(paddedTo: g.rank), b: factors.stackedB(paddedTo: g.rank) * cb, residual: g.residualNorm(cb: cb, ca: ca))
  }
}
