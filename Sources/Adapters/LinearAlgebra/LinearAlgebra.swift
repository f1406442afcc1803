import CLinearAlgebra
import Checkpoints

/// LAPACK decompositions used by the rules, over BLAS/LAPACK loaded on first use (`dlopen`: the
/// system's OpenBLAS, a bundled one, or `FEDLORA_OPENBLAS`).
///
/// Call ``load()`` before any computation here: it throws when the libraries cannot be loaded, whereas
/// a decomposition reached without them stops the process (a bug, never a user's error). The library's
/// own entry points (``Merge``, ``Audit``, ``ModuleStatistics``) call it themselves.
public enum LinearAlgebra {
  /// Loads BLAS and LAPACK if they are not loaded yet (once per process; it also sets OpenBLAS
  /// to one thread: fedlora runs modules in parallel itself). Every entry point that computes
  /// calls it first, so a missing library is an error its caller handles, never an exit.
  /// - Throws: ``AdapterError/linearAlgebraUnavailable(reason:)`` naming what is missing and
  ///   what to install or set.
  public static func load() throws(AdapterError) {
    guard la_load() == 0 else { throw .linearAlgebraUnavailable(reason: String(cString: la_load_error())) }
  }

  /// The OpenBLAS kernels the computations run on ("SkylakeX", "Haswell", "Zen", ...), loading
  /// BLAS if it is not yet: the widest the CPU's features allow, unless `OPENBLAS_CORETYPE` or
  /// `FEDLORA_OPENBLAS` says otherwise.
  public static var kernels: String { String(cString: la_core_name()) }

  /// The core type fedlora names for OpenBLAS from the CPU's features (`SKYLAKEX`, `HASWELL`,
  /// `ZEN`); nil when the user named one, or another OpenBLAS, or none fits.
  public static var chosenKernels: String? { la_chosen_coretype().map { String(cString: $0) } }

  /// The BLAS and LAPACK a computation runs on, as loaded.
  public struct Libraries: Sendable, Equatable {
    /// The file the CBLAS functions come from.
    public var blas: String
    /// The file the LAPACKE functions come from (the same file for scipy-openblas).
    public var lapacke: String
    /// Why this library: `FEDLORA_OPENBLAS`, `bundled` (lib/fedlora/ beside the executable's
    /// folder, as the wheel and the release tarball lay it out) or `system`.
    public var origin: String
    /// The prefix of every symbol (`scipy_` for scipy-openblas, else empty).
    public var symbolPrefix: String
    /// `openblas_get_config()` (version, build options, kernels; empty when the build lacks it).
    public var config: String
    /// The kernels OpenBLAS runs (``kernels``).
    public var kernels: String
    /// `OPENBLAS_CORETYPE` as OpenBLAS read it (set by the user, or by ``chooseKernels()``).
    public var coretypeVariable: String?
  }

  /// Why BLAS/LAPACK could not be loaded (what is missing and what to install or set).
  public struct LoadFailure: Error, Sendable, CustomStringConvertible {
    /// The reason, as a run that needs BLAS prints it.
    public var description: String
  }

  /// Loads BLAS and LAPACK if they are not yet and says which files they are; a diagnostic
  /// (`fedlora --version --verbose`), so a failure to load is thrown rather than fatal.
  /// - Returns: the files, their origin, symbol prefix, configuration and kernels.
  /// - Throws: ``LoadFailure`` saying what is missing and what to install or set.
  public static func libraries() throws(LoadFailure) -> Libraries {
    var info = la_info()
    guard la_library_info(&info) == 0 else { throw LoadFailure(description: String(cString: la_load_error())) }
    return Libraries(
      blas: String(cString: info.blas_path), lapacke: String(cString: info.lapacke_path),
      origin: String(cString: info.origin), symbolPrefix: String(cString: info.symbol_prefix),
      config: String(cString: info.config), kernels: String(cString: info.core_name),
      coretypeVariable: info.coretype_variable.map { String(cString: $0) })
  }

  /// Names OpenBLAS's kernels (``chosenKernels``) by setting `OPENBLAS_CORETYPE`, without loading
  /// it. Loading does it too; a program calls this early, after reading its arguments and before
  /// starting threads, since `setenv` is not safe beside another thread's `getenv`.
  public static func chooseKernels() { la_choose_kernels() }

  /// Eigen-decomposition of a symmetric matrix (LAPACK `dsyevd`; BLAS loaded first, see ``load()``).
  /// - Parameter m: a symmetric `n x n` matrix (its upper triangle is read).
  /// - Returns: the eigenvalues ascending and the eigenvectors as columns; NaN everywhere when LAPACK
  ///   does not converge.
  /// - Complexity: O(n³).
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
  /// - Parameters:
  ///   - gram: a positive semi-definite `n x n` Gram matrix.
  ///   - relativeCutoff: eigenvalues at or below this fraction of the largest count as zero.
  /// - Returns: `R` `[n, n]` (zero rows for dropped eigenvalues) and its pseudo-inverse `[n, n]`.
  /// - Complexity: O(n³).
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
  /// - Parameter gram: a positive semi-definite `n x n` Gram matrix.
  /// - Returns: the root `[rank, n]` and the pivots (0-based column indices).
  /// - Complexity: O(n² rank).
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
  /// - Parameters:
  ///   - root: a root from ``pivotedCholesky(_:)``, `[rank, n]`.
  ///   - pivots: its pivots.
  /// - Returns: `G` `[n, rank]` with `R G = I`.
  /// - Complexity: O(rank³ + n rank).
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
  /// - Parameters:
  ///   - m: the matrix, `[rows, cols]`.
  ///   - count: how many triplets (at most `min(rows, cols)` are given).
  /// - Returns: `U` `[rows, k]`, the values, `V^T` `[k, cols]`; NaN values when LAPACK does not
  ///   converge.
  /// - Complexity: O(rows cols min(rows, cols)) for the bidiagonalisation, plus O(k (rows + cols)) per
  ///   vector.
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
  /// - Parameter m: the matrix.
  /// - Returns: `min(rows, cols)` values; NaN when LAPACK does not converge.
  /// - Complexity: O(rows cols min(rows, cols)).
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
  /// - Parameter m: the matrix, `[rows, cols]`.
  /// - Returns: `U` `[rows, k]`, `s`, `V^T` `[k, cols]`, `k = min(rows, cols)`; NaN when LAPACK does
  ///   not converge.
  /// - Complexity: O(rows cols min(rows, cols)).
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
  /// - Parameters:
  ///   - m: the matrix, `[rows, cols]`.
  ///   - computeQ: whether to form `Q` `[rows, min(rows, cols)]`.
  /// - Returns: `Q` (nil unless asked for) and `R`.
  /// - Complexity: O(rows cols²), and as much again for `Q`.
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
  /// - Parameters:
  ///   - g: an `n x n` matrix.
  ///   - b: the right-hand side, `n` values.
  /// - Returns: `x`; NaN values when even the ridged system has no finite solution.
  /// - Complexity: O(n³).
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
