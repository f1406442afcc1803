import CLinearAlgebra

/// A dense row-major matrix of Doubles: the small fp64 algebra of aggregation (Gram blocks,
/// cores, coefficient matrices) and widened stacked factors. Thin wrappers over BLAS/LAPACK.
public struct Matrix: Sendable, Equatable {
  /// The number of rows.
  public let rows: Int
  /// The number of columns.
  public let cols: Int
  /// The entries, row-major: `self[i, j]` is `values[i * cols + j]`.
  public var values: [Double]

  /// A `rows x cols` matrix of row-major `values`.
  /// - Parameters:
  ///   - rows: the number of rows.
  ///   - cols: the number of columns.
  ///   - values: exactly `rows * cols` entries (a precondition).
  public init(rows: Int, cols: Int, values: [Double]) {
    precondition(values.count == rows * cols)
    self.rows = rows
    self.cols = cols
    self.values = values
  }

  /// The `rows x cols` zero matrix.
  /// - Parameters:
  ///   - rows: the number of rows.
  ///   - cols: the number of columns.
  public init(zeros rows: Int, _ cols: Int) {
    self.init(rows: rows, cols: cols, values: [Double](repeating: 0, count: rows * cols))
  }

  /// The `n x n` identity.
  /// - Parameter n: the size.
  /// - Returns: the identity matrix.
  public static func identity(_ n: Int) -> Matrix {
    var m = Matrix(zeros: n, n)
    for i in 0..<n { m[i, i] = 1 }
    return m
  }

  /// The entry at `row`, `col` (both in range: not checked beyond the array's bounds).
  /// - Parameters:
  ///   - row: the row index.
  ///   - col: the column index.
  public subscript(row: Int, col: Int) -> Double {
    get { values[row * cols + col] }
    set { values[row * cols + col] = newValue }
  }

  /// The transpose, `cols x rows` (a copy).
  public var transposed: Matrix {
    var t = Matrix(zeros: cols, rows)
    for i in 0..<rows { for j in 0..<cols { t[j, i] = self[i, j] } }
    return t
  }

  /// Sum of squares of all entries.
  public var squaredNorm: Double { values.reduce(0) { $0 + $1 * $1 } }

  /// `lhs * rhs` (BLAS GEMM; BLAS loaded first, see ``LinearAlgebra/load()``).
  /// - Parameters:
  ///   - lhs: `[m, n]`.
  ///   - rhs: `[n, p]` (a precondition).
  /// - Returns: `[m, p]`.
  /// - Complexity: O(m n p).
  public static func * (lhs: Matrix, rhs: Matrix) -> Matrix {
    precondition(lhs.cols == rhs.rows, "shape mismatch \(lhs.rows)x\(lhs.cols) * \(rhs.rows)x\(rhs.cols)")
    var out = Matrix(zeros: lhs.rows, rhs.cols)
    guard lhs.rows > 0, rhs.cols > 0, lhs.cols > 0 else { return out }
    la_dgemm(
      CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(lhs.rows), Int32(rhs.cols), Int32(lhs.cols),
      1, lhs.values, Int32(lhs.cols), rhs.values, Int32(rhs.cols), 0, &out.values, Int32(rhs.cols))
    return out
  }

  /// The entrywise sum of two matrices of one shape.
  /// - Parameters:
  ///   - lhs: a matrix.
  ///   - rhs: a matrix of the same shape.
  /// - Returns: the sum.
  public static func + (lhs: Matrix, rhs: Matrix) -> Matrix {
    Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map(+))
  }

  /// The entrywise difference of two matrices of one shape.
  /// - Parameters:
  ///   - lhs: a matrix.
  ///   - rhs: a matrix of the same shape.
  /// - Returns: the difference.
  public static func - (lhs: Matrix, rhs: Matrix) -> Matrix {
    Matrix(rows: lhs.rows, cols: lhs.cols, values: zip(lhs.values, rhs.values).map { $0 - $1 })
  }

  /// `m` with every entry times `scalar`.
  /// - Parameters:
  ///   - scalar: the factor.
  ///   - m: the matrix.
  /// - Returns: the scaled matrix.
  public static func * (scalar: Double, m: Matrix) -> Matrix {
    Matrix(rows: m.rows, cols: m.cols, values: m.values.map { scalar * $0 })
  }

  /// `op(self) * op(other)` with either side transposed in place (BLAS GEMM, no copy).
  /// - Parameters:
  ///   - transposingSelf: use `self^T`.
  ///   - other: the right factor.
  ///   - transposingOther: use `other^T`.
  /// - Returns: the product.
  /// - Complexity: O(m n inner).
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
  /// - Parameters:
  ///   - a: top left.
  ///   - b: top right, as many rows as `a`.
  ///   - c: bottom left, as many columns as `a`.
  ///   - d: bottom right.
  /// - Returns: the block matrix.
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
  /// - Parameter range: row indices.
  /// - Returns: a copy of those rows.
  public func rows(_ range: Range<Int>) -> Matrix {
    Matrix(rows: range.count, cols: cols, values: Array(values[(range.lowerBound * cols)..<(range.upperBound * cols)]))
  }

  /// The rows in `order` (row `i` of the result is row `order[i]`), in one copy.
  /// - Parameter order: row indices, in the order wanted.
  /// - Returns: the reordered rows.
  public func rows(in order: [Int]) -> Matrix {
    var out = [Double]()
    out.reserveCapacity(order.count * cols)
    for row in order { out.append(contentsOf: values[(row * cols)..<((row + 1) * cols)]) }
    return Matrix(rows: order.count, cols: cols, values: out)
  }

  /// Columns `range` as a new matrix.
  /// - Parameter range: column indices.
  /// - Returns: a copy of those columns.
  public func columns(_ range: Range<Int>) -> Matrix {
    var out = Matrix(zeros: rows, range.count)
    for i in 0..<rows { for (j, c) in range.enumerated() { out[i, j] = self[i, c] } }
    return out
  }
}
