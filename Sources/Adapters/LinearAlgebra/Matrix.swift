import CLinearAlgebra

/// A dense row-major matrix of Doubles: the small fp64 algebra of aggregation (Gram blocks,
/// cores, coefficient matrices) and widened stacked factors. Thin wrappers over BLAS/LAPACK.
public struct Matrix: Sendable, Equatable {
  public let rows: Int
  public let cols: Int
  public var values: [Double]

  public init(rows: Int, cols: Int, values: [Double]) {
    precondition(values.count == rows * cols)
    self.rows = rows
    self.cols = cols
    self.values = values
  }

  public init(zeros rows: Int, _ cols: Int) {
    self.init(rows: rows, cols: cols, values: [Double](repeating: 0, count: rows * cols))
  }

  public static func identity(_ n: Int) -> Matrix {
    var m = Matrix(zeros: n, n)
    for i in 0..<n { m[i, i] = 1 }
    return m
  }

  public subscript(row: Int, col: Int) -> Double {
    get { values[row * cols + col] }
    set { values[row * cols + col] = newValue }
  }

  public var transposed: Matrix {
    var t = Matrix(zeros: cols, rows)
    for i in 0..<rows { for j in 0..<cols { t[j, i] = self[i, j] } }
    return t
  }

  /// Sum of squares of all entries.
  public var squaredNorm: Double { values.reduce(0) { $0 + $1 * $1 } }

  /// `self * other` (GEMM).
  public static func * (lhs: Matrix, rhs: Matrix) -> Matrix {
    precondition(lhs.cols == rhs.rows, "shape mismatch \(lhs.rows)x\(lhs.cols) * \(rhs.rows)x\(rhs.cols)")
    var out = Matrix(zeros: lhs.rows, rhs.cols)
    guard lhs.rows > 0, rhs.cols > 0, lhs.cols > 0 else { return out }
    la_dgemm(
      CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(lhs.rows), Int32(rhs.cols), Int32(lhs.cols),
      1, lhs.values, Int32(lhs.cols), rhs.values, Int32(rhs.cols), 0, &out.values, Int32(rhs.cols))
    return out
  }

  public static func + (lhs: Matrix, rhs: Matrix) -> Matrix {
    Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map(+))
  }

  public static func - (lhs: Matrix, rhs: Matrix) -> Matrix {
    Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map { $0 - $1 })
  }

  public static func * (scalar: Double, m: Matrix) -> Matrix {
    Matrix(rows: m.rows, cols: m.cols, values: m.values.map { scalar * $0 })
  }

  /// `op(self) * op(other)` with either side transposed in place (GEMM, no copy).
  public func product(transposingSelf: Bool = false, _ other: Matrix, transposingOther: Bool = false) -> Matrix {
    let (m, inner) = transposingSelf ? (cols, rows) : (rows, cols)
    let n = transposingOther ? other.rows : other.cols
    precondition(inner == (transposingOther ? other.cols : other.rows), "shape mismatch")
    var out = Matrix(zeros: m, n)
    guard m > 0, n > 0, inner > 0 else { return out }
    la_dgemm(
      CblasRowMajor, transposingSelf ? CblasTrans : CblasNoTrans, transposingOther ? CblasTrans : CblasNoTrans,
      Int32(m), Int32(n), Int32(inner), 1, values, Int32(cols), other.values, Int32(other.cols), 0, &out.values,
      Int32(n))
    return out
  }

  /// The 2 x 2 block matrix `[[a, b], [c, d]]`.
  public static func blocks(_ a: Matrix, _ b: Matrix, _ c: Matrix, _ d: Matrix) -> Matrix {
    var values = [Double]()
    values.reserveCapacity((a.rows + c.rows) * (a.cols + b.cols))
    for i in 0..<a.rows {
      values += a.values[(i * a.cols)..<((i + 1) * a.cols)]
      values += b.values[(i * b.cols)..<((i + 1) * b.cols)]
    }
    for i in 0..<c.rows {
      values += c.values[(i * c.cols)..<((i + 1) * c.cols)]
      values += d.values[(i * d.cols)..<((i + 1) * d.cols)]
    }
    return Matrix(rows: a.rows + c.rows, cols: a.cols + b.cols, values: values)
  }

  /// `self^T self` (SYRK), symmetric `cols x cols`.
  public var gramOfColumns: Matrix { gram(transposed: true) }

  /// `self self^T` (SYRK), symmetric `rows x rows`.
  public var gramOfRows: Matrix { gram(transposed: false) }

  private func gram(transposed: Bool) -> Matrix {
    let (n, inner) = transposed ? (cols, rows) : (rows, cols)
    var out = Matrix(zeros: n, n)
    guard rows > 0, cols > 0 else { return out }
    la_dsyrk(
      CblasRowMajor, CblasUpper, transposed ? CblasTrans : CblasNoTrans, Int32(n), Int32(inner), 1, values, Int32(cols),
      0, &out.values, Int32(n))
    out.symmetrizeFromUpper()
    return out
  }

  mutating func symmetrizeFromUpper() {
    for i in 0..<rows { for j in 0..<i { self[i, j] = self[j, i] } }
  }

  /// Rows `range` as a new matrix.
  public func rows(_ range: Range<Int>) -> Matrix {
    Matrix(rows: range.count, cols: cols, values: Array(values[(range.lowerBound * cols)..<(range.upperBound * cols)]))
  }

  /// The rows in `order` (row `i` of the result is row `order[i]`), in one copy.
  public func rows(in order: [Int]) -> Matrix {
    var out = [Double]()
    out.reserveCapacity(order.count * cols)
    for row in order { out.append(contentsOf: values[(row * cols)..<((row + 1) * cols)]) }
    return Matrix(rows: order.count, cols: cols, values: out)
  }

  /// Columns `range` as a new matrix.
  public func columns(_ range: Range<Int>) -> Matrix {
    var out = Matrix(zeros: rows, range.count)
    for i in 0..<rows { for (j, c) in range.enumerated() { out[i, j] = self[i, c] } }
    return out
  }
}

/// LAPACK decompositions used by the rules.
public enum LinearAlgebra {
  /// What runs before the process exits when BLAS/LAPACK, loaded on first use, cannot be
  /// loaded (the CLI removes its temporaries; the reason is then printed on stderr). Loading
  /// also sets OpenBLAS to one thread: fedlora runs layers in parallel itself.
  public static func onLoadFailure(_ handler: @escaping @convention(c) (UnsafePointer<CChar>?) -> Void) {
    la_set_failure_handler(handler)
  }

  /// Eigen-decomposition of a symmetric matrix: eigenvalues ascending, eigenvectors as columns.
  public static func symmetricEigen(_ m: Matrix) -> (values: [Double], vectors: Matrix) {
    var a = m.values
    var w = [Double](repeating: 0, count: m.rows)
    let info = la_dsyevd(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(m.rows), &a, Int32(m.rows), &w)
    precondition(info >= 0, "dsyevd: argument \(-info) is invalid")
    // No convergence: NaN, which every error computed from it shows, not a plausible answer.
    if info != 0 { return (w.map { _ in .nan }, Matrix(rows: m.rows, cols: m.rows, values: a.map { _ in .nan })) }
    return (w, Matrix(rows: m.rows, cols: m.rows, values: a))
  }

  /// A square root `R` with `R^T R = G` for a positive semi-definite Gram matrix `G`
  /// (`R = sqrt(Lambda) V^T`), with its pseudo-inverse. Eigenvalues below `relativeCutoff` of the
  /// largest count as zero (rank-deficient stacks, identical clients).
  public static func gramRoot(_ gram: Matrix, relativeCutoff: Double = 1e-14) -> (root: Matrix, pseudoInverse: Matrix) {
    let n = gram.rows
    let (values, vectors) = symmetricEigen(gram)
    let largest = values.last ?? 0
    var root = Matrix(zeros: n, n)
    var inverse = Matrix(zeros: n, n)
    for k in 0..<n where values[k] > largest * relativeCutoff && values[k] > 0 {
      let s = values[k].squareRoot()
      for i in 0..<n {
        root[k, i] = s * vectors[i, k]
        inverse[i, k] = vectors[i, k] / s
      }
    }
    return (root, inverse)
  }

  /// A root `R` (`rank x n`) with `R^T R = G` for a positive semi-definite Gram matrix `G`, by
  /// pivoted Cholesky (LAPACK `dpstrf`, stopping at the numerical rank: a tenth of the cost of
  /// the eigen-decomposition `gramRoot` uses), with its pivots: columns `pivots[0..<rank]` of the
  /// root form an upper-triangular, invertible `rank x rank` matrix.
  public static func pivotedCholesky(_ gram: Matrix) -> (root: Matrix, pivots: [Int]) {
    let n = gram.rows
    guard n > 0 else { return (Matrix(zeros: 0, 0), []) }
    var u = gram.values
    var pivots = [Int32](repeating: 0, count: n)
    var rank: Int32 = 0
    let info = la_dpstrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), &u, Int32(n), &pivots, &rank, -1)
    precondition(info >= 0, "dpstrf: argument \(-info) is invalid")
    // `P^T G P = U^T U` with `P` the pivots' permutation, so `R = U P^T`: column `j` of `U`
    // (its upper triangle, first `rank` rows) is column `pivots[j] - 1` of `R`.
    var root = Matrix(zeros: Int(rank), n)
    for i in 0..<Int(rank) {
      for j in i..<n { root[i, Int(pivots[j]) - 1] = u[i * n + j] }
    }
    return (root, pivots.map { Int($0) - 1 })
  }

  /// A right inverse `G` (`n x rank`, `R G = I`) of a pivoted-Cholesky root: the inverse of its
  /// triangular part (one TRSM), in the pivots' rows. With `R^T R = X^T X`, `X G` has
  /// orthonormal columns whichever right inverse is taken, so this one serves as `R^+` does.
  public static func rightInverse(_ root: Matrix, pivots: [Int]) -> Matrix {
    let rank = root.rows
    var inverse = Matrix.identity(rank)
    guard rank > 0 else { return Matrix(zeros: root.cols, 0) }
    var triangle = Matrix(zeros: rank, rank)
    for i in 0..<rank { for j in i..<rank { triangle[i, j] = root[i, pivots[j]] } }
    la_dtrsm(
      CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(rank), Int32(rank), 1,
      triangle.values, Int32(rank), &inverse.values, Int32(rank))
    var g = Matrix(zeros: root.cols, rank)
    for j in 0..<rank { for k in 0..<rank { g[pivots[j], k] = inverse[j, k] } }
    return g
  }

  /// The `count` largest singular values of `m` with their vectors (LAPACK `dgesvdx`: one
  /// bidiagonalisation, then only the vectors asked for), descending.
  public static func largestSingularTriplets(_ m: Matrix, count: Int) -> (u: Matrix, s: [Double], vt: Matrix) {
    let k = min(count, m.rows, m.cols)
    guard k > 0 else { return (Matrix(zeros: m.rows, 0), [], Matrix(zeros: 0, m.cols)) }
    var a = m.values
    var found: Int32 = 0
    var s = [Double](repeating: 0, count: min(m.rows, m.cols))
    var u = [Double](repeating: 0, count: m.rows * k)
    var vt = [Double](repeating: 0, count: k * m.cols)
    var superb = [Int32](repeating: 0, count: 12 * min(m.rows, m.cols))
    let info = la_dgesvdx(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "I")), Int32(m.rows),
      Int32(m.cols),
      &a, Int32(m.cols), 0, 0, 1, Int32(k), &found, &s, &u, Int32(k), &vt, Int32(m.cols), &superb)
    precondition(info >= 0, "dgesvdx: argument \(-info) is invalid")
    guard info == 0, Int(found) == k else {
      return (Matrix(zeros: m.rows, k), [Double](repeating: .nan, count: k), Matrix(zeros: k, m.cols))
    }
    return (Matrix(rows: m.rows, cols: k, values: u), Array(s.prefix(k)), Matrix(rows: k, cols: m.cols, values: vt))
  }

  /// The singular values of `m`, descending, without its vectors (a third of the full SVD).
  public static func singularValues(_ m: Matrix) -> [Double] {
    let k = min(m.rows, m.cols)
    guard k > 0 else { return [] }
    var a = m.values
    var s = [Double](repeating: 0, count: k)
    var (u, vt) = ([0.0], [0.0])  // not referenced with jobz N (LAPACKE still checks their strides)
    let info = la_dgesdd(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int32(m.rows), Int32(m.cols), &a, Int32(m.cols), &s, &u, Int32(m.rows),
      &vt, Int32(m.cols))
    precondition(info >= 0, "dgesdd: argument \(-info) is invalid")
    // No convergence: NaN, which every error computed from these shows, rather than zeros.
    return info == 0 ? s : [Double](repeating: .nan, count: k)
  }

  /// Thin SVD `M = U diag(s) V^T` (singular values descending).
  public static func svd(_ m: Matrix) -> (u: Matrix, s: [Double], vt: Matrix) {
    let k = min(m.rows, m.cols)
    var a = m.values
    var s = [Double](repeating: 0, count: k)
    var u = [Double](repeating: 0, count: m.rows * k)
    var vt = [Double](repeating: 0, count: k * m.cols)
    guard k > 0 else { return (Matrix(zeros: m.rows, 0), [], Matrix(zeros: 0, m.cols)) }
    let info = la_dgesdd(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(m.rows), Int32(m.cols), &a, Int32(m.cols), &s, &u, Int32(k), &vt,
      Int32(m.cols))
    precondition(info >= 0, "dgesdd: argument \(-info) is invalid")
    if info != 0 {
      let nan = { (rows: Int, cols: Int) in
        Matrix(rows: rows, cols: cols, values: [Double](repeating: .nan, count: rows * cols))
      }
      return (nan(m.rows, k), [Double](repeating: .nan, count: k), nan(k, m.cols))
    }
    return (Matrix(rows: m.rows, cols: k, values: u), s, Matrix(rows: k, cols: m.cols, values: vt))
  }

  /// Thin QR of a tall matrix: `M = Q R`, `Q` with orthonormal columns, `R` upper triangular
  /// (`min(rows, cols) x cols`). `Q` is formed only when asked for.
  public static func thinQR(_ m: Matrix, computeQ: Bool = true) -> (q: Matrix?, r: Matrix) {
    let k = min(m.rows, m.cols)
    var a = m.values
    var tau = [Double](repeating: 0, count: max(k, 1))
    _ = la_dgeqrf(LAPACK_ROW_MAJOR, Int32(m.rows), Int32(m.cols), &a, Int32(m.cols), &tau)
    var r = Matrix(zeros: k, m.cols)
    for i in 0..<k { for j in i..<m.cols { r[i, j] = a[i * m.cols + j] } }
    guard computeQ else { return (nil, r) }
    _ = la_dorgqr(LAPACK_ROW_MAJOR, Int32(m.rows), Int32(k), Int32(k), &a, Int32(m.cols), &tau)
    let q = Matrix(rows: m.rows, cols: m.cols, values: a).columns(0..<k)
    return (q, r)
  }

  /// Solves the small symmetric system `G x = b`; a relative ridge of 1e-10 of the trace is
  /// added when `G` is singular (identical clients).
  public static func solve(_ g: Matrix, _ b: [Double]) -> [Double] {
    let n = g.rows
    for attempt in 0..<2 {
      var a = g.values
      if attempt == 1 {
        let ridge = max(1e-300, 1e-10 * (0..<n).reduce(0) { $0 + g[$1, $1] } / Double(n))
        for i in 0..<n { a[i * n + i] += ridge }
      }
      var x = b
      var pivots = [Int32](repeating: 0, count: n)
      let info = la_dgesv(LAPACK_ROW_MAJOR, Int32(n), 1, &a, Int32(n), &pivots, &x, 1)
      if info == 0, x.allSatisfy(\.isFinite) { return x }
    }
    return b.map { _ in .nan }
  }
}
