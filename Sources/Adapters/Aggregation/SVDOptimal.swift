/// The optimal rank-`R` estimate (Eckart-Young), never forming `T`. With the geometry's roots
/// (`Rb^T Rb = Bs^T Bs`, `Ra^T Ra = Ast Ast^T`: QR factors up to a rotation, at a fraction of the
/// cost of a Householder QR of the `d x Ur` stack), `Bs = Qb Rb` and `Ast^T = Qa Ra` with
/// `Qb = Bs Gb`, `Qa = Ast^T Ga` for right inverses `Rb Gb = I`, `Ra Ga = I`, so
/// `T = Qb (Rb W Ra^T) Qa^T`. The `R` largest singular triplets of that core `Uc S Vc^T` give the
/// balanced split `Bh = Qb Uc_R S_R^(1/2)`, `Ah = S_R^(1/2) Vc_R^T Qa^T`. The error reported is
/// that of the factors as computed: the floor, plus rounding of about 1e-8 of `||T||`.
public struct SVDOptimal: AggregationRule {
  /// The rank asked for (`--rank`); the clients' largest by default.
  public let rank: Int?

  /// `rank`: the rank asked for, nil for the clients' largest.
  public init(rank: Int?) { self.rank = rank }

  /// `rank` (else the clients' largest), at most `min(d, k)` and the clients' ranks added up.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    min(rank ?? ranks.max() ?? 0, d, k, ranks.reduce(0, +))
  }

  /// The optimal factors at `rank`; `geometry` is required.
  public func aggregate(_ factors: ModuleFactors, geometry: ModuleGeometry?, rank: Int) -> ModuleEstimate {
    guard let geometry else { preconditionFailure("svd solves on the Gram blocks: its merge always computes them") }
    return Self.aggregate(factors, geometry: geometry, rank: rank)
  }

  /// The optimal rank-`rank` factors from `g`'s core, and their residual.
  public static func aggregate(_ factors: ModuleFactors, geometry g: ModuleGeometry, rank: Int) -> ModuleEstimate {
    let (uc, s, vt) = LinearAlgebra.largestSingularTriplets(g.core, count: rank)
    var left = Matrix(zeros: uc.rows, rank)
    var right = Matrix(zeros: rank, vt.cols)
    for i in 0..<s.count {
      let root = s[i].squareRoot()
      for row in 0..<uc.rows { left[row, i] = uc[row, i] * root }
      for col in 0..<vt.cols { right[i, col] = vt[i, col] * root }
    }
    // Components beyond the available singular values (tiny modules) stay zero.
    let cb = LinearAlgebra.rightInverse(g.rb, pivots: g.rbPivots) * left
    let ca = right * LinearAlgebra.rightInverse(g.ra, pivots: g.raPivots).transposed
    // The residual of the factors as written (the floor plus the split's rounding).
    return ModuleEstimate(
      a: combinedA(factors, ca, rank: g.rank), b: combinedB(factors, cb, rank: g.rank),
      residual: g.residualNorm(cb: cb, ca: ca))
  }

  /// `Ca Ast` as a sum over clients of `Ca[:, block u] A_u`: no `N x k` stack in memory.
  static func combinedA(_ factors: ModuleFactors, _ ca: Matrix, rank r: Int) -> Matrix {
    ca * factors.stackedA  // the stack's padding rows are zeros
  }

  /// `Bs Cb` as a sum over clients of `Bs_u Cb[block u, :]`: no `d x N` stack in memory.
  static func combinedB(_ factors: ModuleFactors, _ cb: Matrix, rank r: Int) -> Matrix {
    factors.stackedB * cb  // the stack's padding columns are zeros
  }
}
