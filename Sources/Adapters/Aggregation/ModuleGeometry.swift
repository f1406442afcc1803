/// The fp64 Gram blocks of one module's stacked (zero-padded) factors and their square roots,
/// from which every error is computed without forming a dense `[d, k]` matrix.
///
/// With `Ast = [A_1; ...; A_U]` (`N x k`, N = U r) and `Bs = [Bs_1, ..., Bs_U]` (`d x N`):
/// `KA = Ast Ast^T`, `KB = Bs^T Bs` (one SYRK each), and roots `Ra^T Ra = KA`, `Rb^T Rb = KB`
/// (pivoted Cholesky, as many rows as the numerical rank).
/// An estimate `Bh Ah` with `Bh = Bs Cb`, `Ah = Ca Ast` leaves the residual
/// `T - Bh Ah = Bs (W - Cb Ca) Ast`, whose norm is `||Rb (W - Cb Ca) Ra^T||_F`: a product of small
/// matrices, computed directly (no cancelling expansion), exact to rounding.
///
/// Cost per module: the two SYRKs, `N^2 (d + k)` flops, are nearly all of it; the roots
/// (`N^3 / 3` each) and the singular values of the core (no vectors) are small beside them for
/// `N << min(d, k)`. The SVD rule alone needs the core's vectors and the roots' inverses, and
/// computes them itself (``SVDOptimal``).
public struct ModuleGeometry: Sendable {
  /// `r`, the clients' largest rank: every client's block is padded to it.
  public let rank: Int
  /// `U`, the number of clients (blocks).
  public let clients: Int
  /// The client weights `w_u`.
  public let weights: [Double]
  /// `r x r` blocks `KA[i][j] = A_i A_j^T` and `KB[i][j] = Bs_i^T Bs_j` live inside these.
  public let ka: Matrix
  /// `KB = Bs^T Bs`, `U r x U r`.
  public let kb: Matrix
  let ra: Matrix
  let rb: Matrix
  /// Their pivots (the columns holding each root's triangular part), for right inverses.
  let raPivots: [Int]
  let rbPivots: [Int]
  /// `Rb W Ra^T`: `T = Bs W Ast` seen through the roots. Its norm is `||T||`, its singular
  /// values are `T`'s, and a residual is its difference with a thin product.
  let core: Matrix
  /// `||T||_F`.
  public let normT: Double
  /// The singular values of `T`, descending: those of the core `Rb W Ra^T`, padded with zeros
  /// to `N`.
  public let singularValues: [Double]
  /// `W = diag(w_u I_r)` (built when asked: `N^2` values that FedAvg never needs).
  var weightMatrix: Matrix { Self.blocks(weights, rank: rank, diagonal: true) }
  /// `KA[i][j]` and `KB[i][j]` as `r x r` matrices, for FLoRA-NA's normal equations and the
  /// cosines (built when asked, as copies of `KA` and `KB`).
  var kaBlocks: [[Matrix]] { Self.split(ka, clients: clients, rank: rank) }
  var kbBlocks: [[Matrix]] { Self.split(kb, clients: clients, rank: rank) }

  /// The Gram blocks, their roots and the core of one module's factors.
  /// - Parameter factors: the module's stacked factors.
  /// - Complexity: O(N² (d + k)) flops for the two SYRKs, N = U R (U clients, largest rank R), plus
  ///   O(N³) for the roots and the core's singular values; memory O(N²): the stacks are not kept.
  public init(_ factors: ModuleFactors) {
    let r = factors.maxRank
    rank = r
    clients = factors.ranks.count
    weights = factors.weights
    // The stacks (N x k, d x N) are not kept: `--scope model` holds every module's geometry at once.
    ka = factors.stackedA.gramOfRows
    kb = factors.stackedB.gramOfColumns
    (ra, raPivots) = LinearAlgebra.pivotedCholesky(ka)
    (rb, rbPivots) = LinearAlgebra.pivotedCholesky(kb)
    // `Rb W`: W is diagonal, so a scaling of Rb's columns (not a GEMM).
    var rbW = rb
    for i in 0..<rbW.rows {
      for (u, w) in factors.weights.enumerated() { for j in (u * r)..<((u + 1) * r) { rbW[i, j] *= w } }
    }
    core = rbW.product(ra, transposingOther: true)
    normT = core.squaredNorm.squareRoot()
    let values = LinearAlgebra.singularValues(core)
    singularValues = values + [Double](repeating: 0, count: max(0, clients * r - values.count))
  }

  /// `[c_1 I; ...; c_U I]` (`U r x r`) or, with `diagonal`, `diag(c_u I)`.
  static func blocks(_ c: [Double], rank: Int, diagonal: Bool = false) -> Matrix {
    var m = Matrix(zeros: c.count * rank, diagonal ? c.count * rank : rank)
    for (u, value) in c.enumerated() { for i in 0..<rank { m[u * rank + i, diagonal ? u * rank + i : i] = value } }
    return m
  }

  /// `||T - Bh Ah||_F` for `Bh = Bs Cb`, `Ah = Ca Ast`, computed through the roots without forming `T`.
  /// - Parameters:
  ///   - cb: `Cb` `[N, r]`.
  ///   - ca: `Ca` `[r, N]`.
  /// - Returns: the residual's Frobenius norm.
  /// - Complexity: O(N² r): thin products of the roots, no `[d, k]` matrix.
  public func residualNorm(cb: Matrix, ca: Matrix) -> Double {
    // `Rb (W - Cb Ca) Ra^T = core - (Rb Cb)(Ca Ra^T)`: thin products (N R each) instead of two
    // N^3 ones; the subtraction loses about eps ||T|| absolute, far below any error reported.
    let estimate = (rb * cb) * ca.product(ra, transposingOther: true)
    return (core - estimate).squaredNorm.squareRoot()
  }

  /// `||T - Bh Ah||_F` for coefficient vectors: `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u` (FedAvg's and
  /// FLoRA-NA's form).
  /// - Parameters:
  ///   - p: one coefficient per client for `A`.
  ///   - q: one coefficient per client for `B`.
  /// - Returns: the residual's Frobenius norm.
  /// - Complexity: O(N² R).
  public func residualNorm(p: [Double], q: [Double]) -> Double {
    residualNorm(cb: Self.blocks(q, rank: rank), ca: Self.blocks(p, rank: rank).transposed)
  }

  /// The relative error `||T - est|| / ||T||`.
  /// - Parameter residual: a residual norm, or nil.
  /// - Returns: the ratio; nil when `residual` is nil or `T = 0`.
  public func relative(_ residual: Double?) -> Double? { Adapters.relative(residual, to: normT) }

  /// The rank-`r` floor: `sqrt(sum_{i>r} s_i^2)`, the smallest residual any rank-`r` adapter can have
  /// (Eckart-Young).
  /// - Parameter r: the rank.
  /// - Returns: the floor's residual norm.
  /// - Complexity: O(N).
  public func floorResidual(rank r: Int) -> Double {
    singularValues.dropFirst(r).reduce(0) { $0 + $1 * $1 }.squareRoot()
  }

  /// A stacked Gram as its `r x r` blocks `(i, j)`.
  static func split(_ gram: Matrix, clients: Int, rank: Int) -> [[Matrix]] {
    (0..<clients).map { i in
      (0..<clients).map { j in
        var out = Matrix(zeros: rank, rank)
        for a in 0..<rank { for b in 0..<rank { out[a, b] = gram[i * rank + a, j * rank + b] } }
        return out
      }
    }
  }
}
