import Checkpoints

/// Aggregates a client set module by module with one ``AggregationRule``. Each module is read,
/// widened and solved once, when it is asked for (by a writer, in parallel with other modules,
/// or all of them in memory by ``aggregate()``), and its report kept: memory follows the modules
/// being solved, and the results do not depend on the order or the thread count.
public final class Merge: Sendable {
  /// The clients being aggregated.
  public let set: ClientSet
  /// The options the merge was made with.
  public let options: MergeOptions
  /// The rule that solves each module (``FedAvg`` for fedex, ``Stack`` for exact).
  public let rule: any AggregationRule
  /// Each module's output rank, decided before anything is solved (writers lay out their
  /// tensors from it, and every solved module is checked against it): the rule's rank, but for
  /// `svd` never more than `min(d, k)`, the clients' ranks added up or, beyond the clients'
  /// largest rank, the ideal update's numerical rank.
  public let outputRanks: [Int]
  private let rankLimits: [RankLimit?]
  /// Each solved module's report, by module index.
  private let reports: Locked<[ModuleReport?]>
  /// fedex: the estimates its base merge solved, handed to the adapter written after it.
  private let kept: Locked<[ModuleEstimate?]>

  /// Singular values of `T` at or below this fraction of the largest count as zero when an
  /// `svd` rank is clamped: about the resolution of the fp64 Gram route (sqrt of the fp64 epsilon).
  public static let rankTolerance = 1e-7

  /// `withBase`: the result goes into base weights, which `exact` and `fedex` need.
  public init(_ set: ClientSet, options: MergeOptions, withBase: Bool = false) throws(AdapterError) {
    if options.method.needsBase, !withBase { throw .needsBase(method: options.method.rawValue) }
    if !options.computeErrors, options.method.solvesOnGrams {
      throw .badOption(
        message: "\(options.method.rawValue) solves on the Gram blocks the errors come from: it always computes them")
    }
    if let dora = set.clients.first(where: \.isDoRA) { throw .doraNotMergeable(path: dora.path) }
    if let rank = options.rank {
      guard options.method == .svd else {
        throw .badOption(message: "a rank is used by the svd rule only, not by \(options.method.rawValue)")
      }
      guard rank > 0 else { throw .badOption(message: "the rank must be positive") }
    }
    self.set = set
    self.options = options
    rule = try Self.rule(set, options: options)
    (outputRanks, rankLimits) = try Self.outputRanks(set, options: options, rule: rule)
    reports = Locked(set.moduleNames.map { _ in nil })
    kept = Locked(set.moduleNames.map { _ in nil })
  }

  private static func rule(_ set: ClientSet, options: MergeOptions) throws(AdapterError) -> any AggregationRule {
    switch options.method {
    case .fedavg, .fedex: return FedAvg()
    case .stack, .exact: return Stack()
    case .svd: return SVDOptimal(rank: options.rank)
    case .floraNA:
      guard options.sharedCoefficients, !options.planOnly else { return FloraNA(options: options.flora) }
      try LinearAlgebra.load()
      let geometries = try parallelMap(set.moduleNames) { module throws(AdapterError) in
        ModuleGeometry(try ModuleFactors(set, module: module))
      }
      let solved = FloraNA.solve(geometries, options: options.flora)
      return FloraNA(options: options.flora, shared: (solved.p, solved.q))
    }
  }

  /// Module `index`'s factors, solved (once: a module the fedex base merge solved is handed
  /// over) with its report recorded.
  public func solveModule(_ index: Int) throws(AdapterError) -> ModuleEstimate {
    precondition(!options.planOnly, "a merge planned for a dry run is not solved")
    if let estimate = kept.withLock({ kept in
      defer { kept[index] = nil }
      return kept[index]
    }) {
      return estimate
    }
    let (estimate, report) = try solve(index)
    reports.withLock { $0[index] = report }
    return estimate
  }

  /// Every module solved in memory, in module order, and the merge's report: the merge without
  /// any file written, for a library that holds its adapters.
  public func aggregate() throws(AdapterError) -> (
    modules: [(name: String, estimate: ModuleEstimate)], report: MergeReport
  ) {
    let estimates = try parallelMap(Array(set.moduleNames.indices)) { index throws(AdapterError) in
      try self.solveModule(index)
    }
    return (zip(set.moduleNames, estimates).map { (name: $0, estimate: $1) }, report)
  }

  /// The reports of the modules solved so far, in module order (all of them once written).
  public var report: MergeReport {
    MergeReport(method: options.method, modules: reports.withLock { $0.compactMap { $0 } })
  }

  /// Solves module `index` for a base merge and records its report. Returns the estimate and the
  /// factors it came from. For `fedex` the estimate is also kept for the adapter written after
  /// the base, so no module is read and solved twice.
  public func solveOnce(_ index: Int) throws(AdapterError) -> (estimate: ModuleEstimate, factors: ModuleFactors) {
    let factors = try ModuleFactors(set, module: set.moduleNames[index])
    let (estimate, report) = try solve(index, factors: factors)
    reports.withLock { $0[index] = report }
    if options.method == .fedex { kept.withLock { $0[index] = estimate } }
    return (estimate, factors)
  }

  private func solve(_ index: Int) throws(AdapterError) -> (ModuleEstimate, ModuleReport) {
    if !options.computeErrors, let estimate = try rule.streamed(set, module: set.moduleNames[index]) {
      return (estimate, try report(index, estimate, geometry: nil))
    }
    return try solve(index, factors: ModuleFactors(set, module: set.moduleNames[index]))
  }

  private func solve(_ index: Int, factors: ModuleFactors) throws(AdapterError) -> (ModuleEstimate, ModuleReport) {
    try LinearAlgebra.load()
    // The fixed-coefficient rules take their errors from the dense update where it is cheaper.
    if options.computeErrors, !options.method.solvesOnGrams, DenseErrors.isCheaper(factors) {
      let dense = DenseErrors(factors)
      let factorsOnly = rule.aggregate(factors, geometry: nil, rank: outputRanks[index])
      let estimate = ModuleEstimate(a: factorsOnly.a, b: factorsOnly.b, residual: dense.residual(factorsOnly))
      return (
        estimate, try report(index, estimate, normT: dense.normT, floor: dense.floorResidual(rank: estimate.rank))
      )
    }
    let geometry = options.computeErrors || options.method.solvesOnGrams ? ModuleGeometry(factors) : nil
    let estimate = rule.aggregate(factors, geometry: geometry, rank: outputRanks[index])
    return (estimate, try report(index, estimate, geometry: geometry))
  }

  /// The module's report, after checking the solved rank against the layout. The floor is taken
  /// at the rank written: never above the error.
  private func report(_ index: Int, _ estimate: ModuleEstimate, geometry: ModuleGeometry?) throws(AdapterError)
    -> ModuleReport
  {
    try report(index, estimate, normT: geometry?.normT, floor: geometry?.floorResidual(rank: estimate.rank))
  }

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

  /// Output ranks per module and why some are below the rank asked for.
  private static func outputRanks(_ set: ClientSet, options: MergeOptions, rule: any AggregationRule)
    throws(AdapterError) -> (
      [Int], [RankLimit?]
    )
  {
    let modules = set.moduleNames.map { set.modules(named: $0).compactMap { $0 } }
    let ranks = modules.map { entries in
      let shape = entries.first?.updateShape ?? [0, 0]
      return rule.outputRank(clientRanks: entries.map(\.rank), d: shape[0], k: shape[1])
    }
    guard options.method == .svd, let asked = options.rank, !options.planOnly else {
      return (ranks, ranks.map { _ in nil })
    }
    // Beyond the clients' largest rank, components past the update's numerical rank would be
    // zeros: that rank is read from the module's geometry (one extra pass, only for those modules).
    let clamped = try parallelMap(Array(zip(set.moduleNames, zip(ranks, modules)))) {
      module, pair throws(AdapterError) -> (Int, RankLimit?) in
      let (rank, entries) = pair
      let largest = entries.map(\.rank).max() ?? 0
      guard rank > largest else { return (rank, rank < asked ? .shape : nil) }
      let values = ModuleGeometry(try ModuleFactors(set, module: module)).singularValues
      let numerical = values.filter { $0 > rankTolerance * (values.first ?? 0) }.count
      let limited = max(largest, min(rank, numerical))
      return (limited, limited < rank ? .update : limited < asked ? .shape : nil)
    }
    return (clamped.map(\.0), clamped.map(\.1))
  }
}
