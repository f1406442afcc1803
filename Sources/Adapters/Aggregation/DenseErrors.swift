/// A module's errors from the dense update, for modules where that is cheaper than the Gram
/// blocks: `T = sum w_u Bs_u A_u` (`d k U r` flops) and the SVD of `T` (`min(d, k)^2 max(d, k)`),
/// against `(U r)^2 (d + k)` for the two SYRKs and the `(U r)^3` work on their cores. That is
/// when many clients adapt a small module (`U r` past `min(d, k)`); the rules that solve on the
/// Gram blocks (flora-na, svd) always take them.
struct DenseErrors {
  let normT: Double
  let singularValues: [Double]
  /// `T`, row-major `d x k`.
  private let t: Matrix

  /// Whether the dense route costs less than the Gram route for this module.
  static func isCheaper(_ factors: ModuleFactors) -> Bool {
    let (d, k, n) = (Double(factors.d), Double(factors.k), Double(factors.ranks.count * factors.maxRank))
    let gram = n * n * (d + k) + 2 * n * n * n
    let dense = d * k * n + 4 * min(d, k) * min(d, k) * max(d, k)
    return dense < gram
  }

  init(_ factors: ModuleFactors) {
    // T = [w_1 Bs_1, ..., w_U Bs_U] [A_1; ...; A_U]: one GEMM of the stacks.
    let (a, wb) = factors.stacked(coefficients: factors.weights)
    let t = wb * a
    self.t = t
    normT = t.squaredNorm.squareRoot()
    singularValues = LinearAlgebra.singularValues(t)
  }

  /// `||T - Bh Ah||_F` of an estimate.
  func residual(_ estimate: ModuleEstimate) -> Double {
    (t - estimate.b * estimate.a).squaredNorm.squareRoot()
  }

  /// The rank-`r` floor: `sqrt(sum_{i>r} s_i^2)`.
  func floorResidual(rank r: Int) -> Double {
    singularValues.dropFirst(r).reduce(0) { $0 + $1 * $1 }.squareRoot()
  }
}
