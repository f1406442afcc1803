import Checkpoints

/// A planned merge of a client set by one ``MergeMethod``: the method, and each module's output
/// rank, decided before anything is solved (writers lay out their tensors from it). Solving is
/// ``solve(window:consume:)``: the module scheduler solves modules in parallel, a bounded
/// window ahead, hands each one over in module order, and returns the ``MergeReport``. A merge
/// holds no state that solving changes: each module is solved from the clients' files alone, so
/// the results do not depend on the order or the thread count.
public final class Merge: Sendable {
  /// The clients being aggregated.
  public let set: ClientSet
  /// The options the merge was made with.
  public let options: MergeOptions
  /// The method that solves each module.
  public let method: any MergeMethod
  /// Each module's output rank, decided before anything is solved (writers lay out their
  /// tensors from it, and every solved module is checked against it): the method's rank, but
  /// for `svd` never more than `min(d, k)`, the clients' ranks added up or, beyond the clients'
  /// largest rank, the ideal update's numerical rank.
  public let outputRanks: [Int]
  private let rankLimits: [RankLimit?]

  /// Singular values of `T` at or below this fraction of the largest count as zero when an
  /// `svd` rank is clamped (``SVDOptimal/rankTolerance``).
  public static let rankTolerance = SVDOptimal.rankTolerance

  /// Plans the merge of `set` with `options`.
  /// - Parameters:
  ///   - set: the clients and their weights.
  ///   - options: the method and its options (``MergeOptions/check(withBase:)`` must pass).
  ///   - withBase: the result goes into base weights, which `exact` and `fedex` need.
  /// - Throws: `AdapterError.needsBase`, `.badOption` for an option the method does not take,
  ///   `.doraNotMergeable`, and what the method's own planning throws (`flora-na --scope model`
  ///   solves its coefficients here; `svd --rank` reads the modules it may clamp).
  /// - Complexity: O(modules × clients) for most methods; `flora-na --scope model` solves every
  ///   module's geometry here, and `svd --rank` above the clients' largest rank the geometry of each
  ///   module it may clamp.
  public init(_ set: ClientSet, options: MergeOptions, withBase: Bool = false) throws(AdapterError) {
    try options.check(withBase: withBase)
    if let dora = set.clients.first(where: \.isDoRA) { throw .doraNotMergeable(path: dora.path) }
    self.set = set
    self.options = options
    method = try options.method.type.init(set, options: options)
    let ranks = try method.outputRanks(set, options: options)
    (outputRanks, rankLimits) = (ranks.map(\.rank), ranks.map(\.limit))
  }

  /// One solved module: its factors (scale folded in) and its report.
  public struct Solved: Sendable {
    /// The factors.
    public let estimate: ModuleEstimate
    /// The module's line of the merge report.
    public let report: ModuleReport
  }

  /// Every module solved in memory, in module order, and the merge's report: the merge without any file
  /// written, for a library that holds its adapters.
  /// - Returns: each module's name and factors (scale folded into `B`), and the report.
  /// - Throws: as ``solve(window:consume:)``.
  /// - Complexity: each module read and solved once (see ``solve(window:consume:)``), a window of them
  ///   held at a time while solving; the result holds every module's factors, O(modules × R (d + k)).
  public func aggregate() throws(AdapterError) -> (
    modules: [(name: String, estimate: ModuleEstimate)], report: MergeReport
  ) {
    var modules: [(name: String, estimate: ModuleEstimate)] = []
    let report = try solve { index, solved in modules.append((set.moduleNames[index], solved.estimate)) }
    return (modules, report)
  }

  /// Solves every module, in parallel, and hands each one to `consume` in module order on the
  /// calling thread; returns the report of them all.
  /// - Parameters:
  ///   - window: at most this many modules solved ahead of `consume` (memory follows it);
  ///     nil for twice the processors.
  ///   - consume: takes module `index`'s result (a writer writes it); a throw stops the merge.
  /// - Returns: the report: one ``ModuleReport`` per module, in module order.
  /// - Throws: the first failure in module order (`AdapterError`): BLAS/LAPACK unavailable, a
  ///   factor unreadable or not finite, a numerical failure, or what `consume` throws.
  /// - Complexity: per module, its factors read once (O(U R (d + k)) values widened to fp64) and, with
  ///   errors, the Gram geometry (O(N² (d + k)), N = U R) or the dense update where that is cheaper;
  ///   then the method's solve. Memory follows the window: about `window` modules' factors at a time.
  public func solve(
    window: Int? = nil, consume: (Int, Solved) throws(AdapterError) -> Void
  ) throws(AdapterError) -> MergeReport {
    try solve(window: window, prepare: { _, solved, _ in solved }, consume: consume)
  }

  /// ``solve(window:consume:)`` with a step run on the worker thread right after each solve,
  /// while the module's factors are at hand (`factors` nil when they were streamed): a writer
  /// turns the factors into bytes there, in parallel, and `consume` only writes them.
  func solve<Prepared: Sendable>(
    window: Int? = nil, factorsAlways: Bool = false,
    prepare: @escaping @Sendable (Int, Solved, ModuleFactors?) throws(AdapterError) -> Prepared,
    consume: (Int, Prepared) throws(AdapterError) -> Void
  ) throws(AdapterError) -> MergeReport {
    precondition(!options.planOnly, "a merge planned for a dry run is not solved")
    var reports: [ModuleReport] = []
    try ModuleScheduler.run(
      count: set.moduleNames.count, window: window ?? ModuleScheduler.defaultWindow,
      solve: { index throws(AdapterError) in
        let (solved, factors) = try self.solve(index, factorsAlways: factorsAlways)
        return (solved.report, try prepare(index, solved, factors))
      },
      consume: { index, result throws(AdapterError) in
        reports.append(result.0)
        try consume(index, result.1)
      })
    return MergeReport(method: options.method, modules: reports)
  }

  /// Module `index` solved: streamed from the files when the method can and no errors are
  /// asked (unless `factorsAlways`), else from its widened factors.
  func solve(_ index: Int, factorsAlways: Bool = false) throws(AdapterError) -> (Solved, ModuleFactors?) {
    let module = set.moduleNames[index]
    if !options.computeErrors, !factorsAlways, let estimate = try method.streamed(set, module: module) {
      return (Solved(estimate: estimate, report: try report(index, estimate, normT: nil, floor: nil)), nil)
    }
    let factors = try ModuleFactors(set, module: module)
    return (try solve(method, index, factors: factors), factors)
  }

  private func solve<Method: MergeMethod>(_ method: Method, _ index: Int, factors: ModuleFactors) throws(AdapterError)
    -> Solved
  {
    try LinearAlgebra.load()
    let rank = outputRanks[index]
    // The fixed-coefficient methods take their errors from the dense update where it is cheaper.
    if options.computeErrors, Method.Input.canSkipErrors, DenseErrors.isCheaper(factors) {
      let dense = DenseErrors(factors)
      let factorsOnly = method.solve(.prepare(factors, rank: rank, errors: false))
      let estimate = ModuleEstimate(a: factorsOnly.a, b: factorsOnly.b, residual: dense.residual(factorsOnly))
      return Solved(
        estimate: estimate,
        report: try report(index, estimate, normT: dense.normT, floor: dense.floorResidual(rank: estimate.rank)))
    }
    let input = Method.Input.prepare(factors, rank: rank, errors: options.computeErrors)
    let estimate = method.solve(input)
    // The floor is taken at the rank written: never above the error.
    let geometry = input.computedGeometry
    return Solved(
      estimate: estimate,
      report: try report(
        index, estimate, normT: geometry?.normT, floor: geometry?.floorResidual(rank: estimate.rank)))
  }

  /// The module's report, after checking the solved rank against the layout.
  private func report(_ index: Int, _ estimate: ModuleEstimate, normT: Double?, floor: Double?) throws(AdapterError)
    -> ModuleReport
  {
    let module = set.moduleNames[index]
    precondition(
      estimate.rank == outputRanks[index], "\(module): solved rank \(estimate.rank), laid out \(outputRanks[index])")
    // The clients' factors were checked finite as they were read, so a NaN or an infinity here
    // is the linear algebra's (a LAPACK routine that failed): refused, never written.
    try Self.checkFinite(estimate, normT: normT, floor: floor, module: module)
    return ModuleReport(
      name: module, shape: [estimate.b.rows, estimate.a.cols], rank: estimate.rank, normT: normT,
      residual: estimate.residual, floorResidual: floor, p: estimate.p, q: estimate.q,
      iterations: estimate.iterations,
      rankLimit: rankLimits[index])
  }

  /// Throws `numericalFailure` unless the factors and the report's numbers are all finite.
  static func checkFinite(_ estimate: ModuleEstimate, normT: Double?, floor: Double?, module: String)
    throws(AdapterError)
  {
    let numbers = [normT, estimate.residual, floor].compactMap { $0 }
    guard numbers.allSatisfy(\.isFinite), estimate.a.values.allSatisfy(\.isFinite),
      estimate.b.values.allSatisfy(\.isFinite)
    else { throw .numericalFailure(module: module) }
  }
}
