import Checkpoints

extension AggregationMethod {
  /// FLoRA-NA (``FloraNA``).
  public static let floraNA = AggregationMethod(FloraNA.self)
}

/// FLoRA-NA: per-client coefficients `p, q` with `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u`
/// minimising `||T - Bh Ah||_F`, found by alternating least squares on the `r x r` Gram blocks
/// (this solver is fedlora's; the paper states the objective, not the solver). Starts at
/// FedAvg and keeps the best iterate, so it is never worse than FedAvg.
public struct FloraNA: MergeMethod {
  /// `flora-na`.
  public static let name = "flora-na"
  /// `--scope` and `--max-iterations`.
  public static let acceptedOptions: Set<MergeOption> = [.scope, .maxIterations]
  /// Zero-pads every client to the largest rank, as FedAvg.
  public static let zeroPadsRanks = true
  /// Reports show each module's `p`, `q` and iterations.
  public static let reportsCoefficients = true

  /// When the ALS solver stops.
  public struct Options: Sendable {
    /// At most this many ALS iterations (`--max-iterations`).
    public var maxIterations = 100
    /// Stop once the objective's relative decrease is at most this.
    public var tolerance = 1e-7
    /// The defaults: 100 iterations, tolerance `1e-7`.
    public init() {}
  }

  /// The solver's stopping criteria.
  public let options: Options
  /// One `(p, q)` for every module (`--scope model`), solved beforehand; nil to solve per module.
  public let shared: (p: [Double], q: [Double])?

  /// A FLoRA-NA with its solver options.
  /// - Parameters:
  ///   - options: when the solver stops.
  ///   - shared: coefficients solved beforehand for every module (`--scope model`); nil to solve per
  ///     module.
  public init(options: Options = Options(), shared: (p: [Double], q: [Double])? = nil) {
    self.options = options
    self.shared = shared
  }

  /// The solver options of `options`; with `sharedCoefficients` (and not a plan), the one
  /// `(p, q)` of every module, solved now on all their geometries.
  /// - Parameters:
  ///   - set: the clients.
  ///   - options: the merge's options (`flora`, `sharedCoefficients`, `planOnly`).
  /// - Throws: `AdapterError` when BLAS/LAPACK cannot be loaded or a module cannot be read.
  /// - Complexity: with shared coefficients, every module's geometry (O(N² (d + k)) each, all held at
  ///   once: O(modules × N²) memory) and the ALS over all of them; otherwise O(1).
  public init(_ set: ClientSet, options: MergeOptions) throws(AdapterError) {
    guard options.sharedCoefficients, !options.planOnly else {
      self.init(options: options.flora)
      return
    }
    try LinearAlgebra.load()
    let geometries = try parallelMap(set.moduleNames) { module throws(AdapterError) in
      ModuleGeometry(try ModuleFactors(set, module: module))
    }
    let solved = Self.solve(geometries, options: options.flora)
    self.init(options: options.flora, shared: (solved.p, solved.q))
  }

  /// The clients' largest rank, as FedAvg's: no more bytes than FedAvg.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the largest of `ranks`.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.max() ?? 0 }

  /// The module's factors from its own `(p, q)` or the `shared` ones.
  /// - Parameter input: the module's factors and geometry.
  /// - Returns: `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u`, the residual, `p`, `q` and the iterations.
  /// - Complexity: O(iterations × U² R³) for the ALS on the Gram blocks (none with shared
  ///   coefficients), plus O(U R (d + k)) for the sums.
  public func solve(_ input: GeometryInput) -> ModuleEstimate {
    if let shared { return FedAvg.combine(input.factors, geometry: input.geometry, p: shared.p, q: shared.q) }
    return Self.aggregate(input.factors, geometry: input.geometry, options: options)
  }

  /// The normal equations of one half-step, summed over modules for `--scope model`.
  struct System {
    var g: Matrix
    var b: [Double]
    static func zero(_ n: Int) -> System { System(g: Matrix(zeros: n, n), b: [Double](repeating: 0, count: n)) }
    static func + (lhs: System, rhs: System) -> System {
      System(
        g: Matrix(rows: lhs.g.rows, cols: lhs.g.cols, values: zip(lhs.g.values, rhs.g.values).map(+)),
        b: zip(lhs.b, rhs.b).map(+))
    }
  }

  /// Solves one module (`--scope layer`).
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - geometry: their Gram geometry.
  ///   - options: when the solver stops.
  /// - Returns: the estimate, with `p`, `q` and the iterations.
  /// - Complexity: as solve(_:)-swift.method.
  public static func aggregate(_ factors: ModuleFactors, geometry: ModuleGeometry, options: Options = Options())
    -> ModuleEstimate
  {
    let (p, q, iterations) = solve([geometry], options: options)
    var estimate = FedAvg.combine(factors, geometry: geometry, p: p, q: q)
    estimate.iterations = iterations
    return estimate
  }

  /// Alternating least squares for coefficients shared by `modules` (one module, or all with
  /// `--scope model`). Returns the gauge-fixed best iterate.
  ///
  /// Each iteration solves a `U x U` linear system for `q`, then one for `p`, built from the `r x r`
  /// blocks of `KA` and `KB`; it stops at `maxIterations` or when the objective's relative decrease is
  /// at most `tolerance`.
  ///
  /// - Parameters:
  ///   - modules: the geometries whose residuals are summed.
  ///   - options: when the solver stops.
  /// - Returns: `p`, `q` and the iterations run; empty coefficients without modules.
  /// - Complexity: O(iterations × modules × U² R³).
  public static func solve(_ modules: [ModuleGeometry], options: Options) -> (p: [Double], q: [Double], iterations: Int)
  {
    guard let first = modules.first else { return ([], [], 0) }
    let w = first.weights
    let objective = { (p: [Double], q: [Double]) in modules.reduce(0.0) { $0 + pow2($1.residualNorm(p: p, q: q)) } }
    var (p, q) = (w, w)
    var best = (p: p, q: q, value: objective(p, q))
    var previous = best.value
    var iterations = 0
    // The r x r blocks, split out of KA and KB once for all iterations.
    let blocks = modules.map { (module: $0, ka: $0.kaBlocks, kb: $0.kbBlocks) }
    while iterations < options.maxIterations, best.value > 0 {
      iterations += 1
      let qSystem = blocks.map { qStep($0.module, p: p, ka: $0.ka, kb: $0.kb) }.reduce(System.zero(w.count), +)
      q = LinearAlgebra.solve(qSystem.g, qSystem.b)
      let pSystem = blocks.map { pStep($0.module, q: q, ka: $0.ka, kb: $0.kb) }.reduce(System.zero(w.count), +)
      p = LinearAlgebra.solve(pSystem.g, pSystem.b)
      guard p.allSatisfy(\.isFinite), q.allSatisfy(\.isFinite) else { break }
      let value = objective(p, q)
      if value < best.value { best = (p, q, value) }
      if previous - value <= options.tolerance * previous { break }
      previous = value
    }
    let (gp, gq) = gauge(best.p, best.q, modules: modules)
    return (gp, gq, iterations)
  }

  /// q-step: `G[i][j] = tr(KB[i][j] M)`, `b[i] = sum_l w_l tr(KB[l][i] N_l^T)` with
  /// `M = sum p_j p_j' KA[j][j']` and `N_l = sum_j p_j KA[l][j]`.
  static func qStep(_ module: ModuleGeometry, p: [Double], ka: [[Matrix]], kb: [[Matrix]]) -> System {
    halfStep(solving: kb, fixed: ka, coefficients: p, module: module)
  }

  /// p-step: the same equations with the sides swapped (`KA` solved, `KB` fixed with `q`): the
  /// Gram blocks are symmetric (`KA[j][i] = KA[i][j]^T`), so `tr(H KA[j][i]) = tr(KA[i][j] H)`
  /// and `tr(X_l KA[i][l]) = tr(KA[l][i] X_l^T)`.
  static func pStep(_ module: ModuleGeometry, q: [Double], ka: [[Matrix]], kb: [[Matrix]]) -> System {
    halfStep(solving: ka, fixed: kb, coefficients: q, module: module)
  }

  /// `G[i][j] = tr(S[i][j] M)`, `b[i] = sum_l w_l tr(S[l][i] N_l^T)` with `M = sum c_j c_j' F[j][j']`
  /// and `N_l = sum_j c_j F[l][j]`, for the Gram blocks `S` of the side solved for and `F` of
  /// the side held at coefficients `c`.
  private static func halfStep(
    solving s: [[Matrix]], fixed f: [[Matrix]], coefficients c: [Double], module: ModuleGeometry
  ) -> System {
    let u = module.clients
    var m = Matrix(zeros: module.rank, module.rank)
    for j in 0..<u { for j2 in 0..<u where c[j] != 0 && c[j2] != 0 { m = m + (c[j] * c[j2]) * f[j][j2] } }
    let n = (0..<u).map { l in (0..<u).reduce(Matrix(zeros: module.rank, module.rank)) { $0 + c[$1] * f[l][$1] } }
    var system = System.zero(u)
    for i in 0..<u {
      for j in 0..<u { system.g[i, j] = trace(s[i][j], m) }
      system.b[i] = (0..<u).reduce(0) { $0 + module.weights[$1] * trace(s[$1][i], n[$1].transposed) }
    }
    return system
  }

  /// Fixes the gauge `(p / c, c q)`: `c = sum p` so `Ah` stays a weighted average of client
  /// `A`s; when `|sum p| < 1e-3`, `c` balances `||Ah||_F = ||Bh||_F` instead.
  static func gauge(_ p: [Double], _ q: [Double], modules: [ModuleGeometry]) -> ([Double], [Double]) {
    let sum = p.reduce(0, +)
    var c = sum
    if abs(sum) < 1e-3 {
      let normA = modules.reduce(0.0) { $0 + quadratic($1.ka, p, rank: $1.rank) }.squareRoot()
      let normB = modules.reduce(0.0) { $0 + quadratic($1.kb, q, rank: $1.rank) }.squareRoot()
      guard normA > 0, normB > 0 else { return (p, q) }
      c = (normA / normB).squareRoot()
    }
    return (p.map { $0 / c }, q.map { $0 * c })
  }

  /// `||sum_u c_u X_u||_F^2` from the stacked Gram of the `X_u`.
  static func quadratic(_ gram: Matrix, _ c: [Double], rank: Int) -> Double {
    var total = 0.0
    for i in c.indices {
      for j in c.indices { for a in 0..<rank { total += c[i] * c[j] * gram[i * rank + a, j * rank + a] } }
    }
    return total
  }

  /// `tr(X Y)` for square matrices.
  static func trace(_ x: Matrix, _ y: Matrix) -> Double {
    var total = 0.0
    for i in 0..<x.rows { for k in 0..<x.cols { total += x[i, k] * y[k, i] } }
    return total
  }
}

@inline(__always) func pow2(_ x: Double) -> Double { x * x }
