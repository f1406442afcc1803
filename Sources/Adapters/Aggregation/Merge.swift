import Checkpoints
import Dispatch

/// Options of an adapter merge.
public struct MergeOptions: Sendable {
  public var method: Method
  /// Output rank for `svd` (default: the clients' largest rank); refused by the other rules.
  /// A layer gets at most what it can hold: see ``Merge/outputRanks``.
  public var rank: Int?
  /// One FLoRA-NA `(p, q)` shared by all layers instead of one per layer.
  public var sharedCoefficients = false
  public var flora = FloraNA.Options()
  /// Whether to compute each layer's error and floor (the Gram blocks). Without, fedavg, stack,
  /// exact and fedex are a weighted sum of the factors and nothing more.
  public var computeErrors = true

  public init(method: Method) { self.method = method }
}

/// What a merge found for one adapted weight.
public struct LayerReport: Sendable {
  public let name: String
  public let shape: [Int]
  public let rank: Int
  /// `||T||_F`, the residual `||T - Bh Ah||_F` of the merged factors and the rank-R floor's
  /// residual, for comparison (all nil when the merge computes no errors).
  public let normT: Double?
  public let residual: Double?
  public let floorResidual: Double?
  public let p: [Double]?
  public let q: [Double]?
  public let iterations: Int?
  /// Why the layer has fewer components than the rank asked for (nil when it has them all).
  public let rankLimit: RankLimit?

  public var relativeError: Double? { relative(residual, to: normT) }
  public var relativeFloor: Double? { relative(floorResidual, to: normT) }
}

/// What bounds a layer's output rank below the rank asked for.
public enum RankLimit: String, Sendable {
  /// `min(d, k)`, or the clients' ranks added up: no update of the layer has a higher rank.
  case shape
  /// The ideal update's numerical rank (singular values above ``Merge/rankTolerance`` of the
  /// largest): further components would be zeros.
  case update
}

/// A merge's per-layer results and the model-level totals.
public struct MergeReport: Sendable {
  public let method: Method
  public let layers: [LayerReport]
  /// `sqrt(sum ||T_l - est_l||^2) / sqrt(sum ||T_l||^2)`.
  public var modelError: Double? { ratio(\.residual) }
  public var modelFloor: Double? { ratio(\.floorResidual) }

  private func ratio(_ part: KeyPath<LayerReport, Double?>) -> Double? {
    var parts: [(residual: Double?, normT: Double)] = []
    for layer in layers {
      guard let normT = layer.normT else { return nil }
      parts.append((layer[keyPath: part], normT))
    }
    return modelRelativeError(parts)
  }
}

/// `residual / ||T||`, nil when `T = 0` (or no residual).
public func relative(_ residual: Double?, to normT: Double?) -> Double? {
  guard let residual, let normT, normT > 0 else { return nil }
  return residual / normT
}

/// The model-level relative error `sqrt(sum_l r_l^2) / sqrt(sum_l ||T_l||^2)` of per-layer
/// residuals; nil when `T = 0` or a layer has no residual.
public func modelRelativeError(_ layers: [(residual: Double?, normT: Double)]) -> Double? {
  let total = layers.reduce(0) { $0 + $1.normT * $1.normT }
  var sum = 0.0
  for layer in layers {
    guard let residual = layer.residual else { return nil }
    sum += residual * residual
  }
  return total > 0 ? (sum / total).squareRoot() : nil
}

/// Aggregates a client set layer by layer. Each layer's factors are read, widened and solved
/// when its output tensors are written, in parallel with other layers, and dropped once both
/// factors are out: memory follows the largest layer, and the bytes written do not depend on
/// the thread count.
public final class Merge: @unchecked Sendable {
  public let set: ClientSet
  public let options: MergeOptions
  /// Each module's output rank, decided before anything is solved (writers lay out their
  /// tensors from it, and every solved layer is checked against it): the rule's rank, but for
  /// `svd` never more than `min(d, k)`, the clients' ranks added up or, beyond the clients'
  /// largest rank, the ideal update's numerical rank.
  public let outputRanks: [Int]
  private let rankLimits: [RankLimit?]
  private let shared: (p: [Double], q: [Double])?
  private let slots: [Slot]

  /// Singular values of `T` at or below this fraction of the largest count as zero when an
  /// `svd` rank is clamped: about the resolution of the fp64 Gram route (sqrt of the fp64 epsilon).
  public static let rankTolerance = 1e-7

  /// One layer's result, computed once by whichever of its two tensors comes first.
  final class Slot: @unchecked Sendable {
    let lock = DispatchQueue(label: "fedlora.merge.slot")
    var estimate: LayerEstimate?
    var report: LayerReport?
    var uses = 0
  }

  /// `withBase`: the result goes into base weights, which `exact` and `fedex` need.
  public init(_ set: ClientSet, options: MergeOptions, withBase: Bool = false) throws {
    if options.method.needsBase, !withBase { throw AdapterError.needsBase(method: options.method.rawValue) }
    if !options.computeErrors, !options.method.aggregatesWithoutGrams {
      throw AdapterError.badOption(message: "\(options.method.rawValue) solves on the Gram blocks the errors come from: it always computes them")
    }
    if let dora = set.clients.first(where: \.isDoRA) { throw AdapterError.doraNotMergeable(path: dora.path) }
    if let rank = options.rank {
      guard options.method == .svd else { throw AdapterError.badOption(message: "a rank is used by the svd rule only, not by \(options.method.rawValue)") }
      guard rank > 0 else { throw AdapterError.badOption(message: "the rank must be positive") }
    }
    self.set = set
    self.options = options
    (outputRanks, rankLimits) = try Self.outputRanks(set, options: options)
    slots = set.moduleNames.map { _ in Slot() }
    if options.method == .floraNA, options.sharedCoefficients {
      let geometries = try parallelMap(set.moduleNames) { LayerGeometry(try LayerFactors(set, module: $0)) }
      let solved = FloraNA.solve(geometries, options: options.flora)
      shared = (solved.p, solved.q)
    } else {
      shared = nil
    }
  }

  /// The estimate for module `index`; the second caller gets it and frees the slot.
  func estimate(_ index: Int) throws -> LayerEstimate {
    let slot = slots[index]
    return try slot.lock.sync {
      if slot.estimate == nil {
        let (estimate, report) = try solve(index)
        slot.estimate = estimate
        slot.report = report
      }
      slot.uses += 1
      guard let estimate = slot.estimate else { throw AdapterError.moduleMismatch(client: "-", module: set.moduleNames[index], message: "not solved") }
      if slot.uses == 2 { slot.estimate = nil }
      return estimate
    }
  }

  /// Per-layer reports, once every layer has been written.
  public var report: MergeReport {
    MergeReport(method: options.method, layers: slots.compactMap(\.report))
  }

  /// Solves module `index` for a base merge and records its report. Returns the estimate and the
  /// factors it came from. For `fedex` the estimate is also kept for the adapter written after
  /// the base (its two tensors free it), so no layer is read and solved twice.
  public func solveOnce(_ index: Int) throws -> (estimate: LayerEstimate, factors: LayerFactors) {
    let factors = try LayerFactors(set, module: set.moduleNames[index])
    let (estimate, report) = try solve(index, factors: factors)
    slots[index].lock.sync {
      slots[index].report = report
      if options.method == .fedex { slots[index].estimate = estimate }
    }
    return (estimate, factors)
  }

  private func solve(_ index: Int) throws -> (LayerEstimate, LayerReport) {
    // FedAvg without errors streams the factors into its sums: no fp64 copy of them at all.
    if !options.computeErrors, options.method == .fedavg {
      let (a, b) = try FedAvg.streamedSum(set, module: set.moduleNames[index])
      let estimate = LayerEstimate(a: a, b: b, residual: nil)
      return (estimate, unreported(index, estimate))
    }
    return try solve(index, factors: try LayerFactors(set, module: set.moduleNames[index]))
  }

  /// Output ranks per module and why some are below the rank asked for.
  private static func outputRanks(_ set: ClientSet, options: MergeOptions) throws -> ([Int], [RankLimit?]) {
    let modules = set.moduleNames.map { set.modules(named: $0).compactMap { $0 } }
    let ranks = modules.map { entries -> Int in
      let summed = entries.reduce(0) { $0 + $1.rank }
      switch options.method {
      case .stack, .exact: return summed
      case .fedavg, .floraNA, .fedex: return entries.map(\.rank).max() ?? 0
      case .svd:
        let shape = entries.first?.updateShape ?? [0, 0]
        return min(options.rank ?? entries.map(\.rank).max() ?? 0, shape[0], shape[1], summed)
      }
    }
    guard options.method == .svd, let asked = options.rank else { return (ranks, ranks.map { _ in nil }) }
    // Beyond the clients' largest rank, components past the update's numerical rank would be
    // zeros: that rank is read from the layer's geometry (one extra pass, only for those layers).
    let clamped = try parallelMap(Array(zip(set.moduleNames, zip(ranks, modules)))) { module, pair -> (Int, RankLimit?) in
      let (rank, entries) = pair
      let largest = entries.map(\.rank).max() ?? 0
      guard rank > largest else { return (rank, rank < asked ? .shape : nil) }
      let values = LayerGeometry(try LayerFactors(set, module: module)).singularValues
      let numerical = values.filter { $0 > rankTolerance * (values.first ?? 0) }.count
      let limited = max(largest, min(rank, numerical))
      return (limited, limited < rank ? .update : limited < asked ? .shape : nil)
    }
    return (clamped.map(\.0), clamped.map(\.1))
  }

  private func solve(_ index: Int, factors: LayerFactors) throws -> (LayerEstimate, LayerReport) {
    let module = set.moduleNames[index]
    guard options.computeErrors else { return try sum(index, factors: factors) }
    let geometry = LayerGeometry(factors)
    var estimate: LayerEstimate
    switch options.method {
    case .fedavg: estimate = FedAvg.aggregate(factors, geometry: geometry)
    case .floraNA:
      if let shared {
        estimate = FedAvg.combine(factors, geometry: geometry, p: shared.p, q: shared.q)
      } else {
        estimate = FloraNA.aggregate(factors, geometry: geometry, options: options.flora)
      }
    case .svd: estimate = SVDOptimal.aggregate(factors, geometry: geometry, rank: outputRanks[index])
    case .stack, .exact: estimate = Stack.aggregate(factors)
    case .fedex: estimate = FedAvg.aggregate(factors, geometry: geometry)
    }
    precondition(estimate.rank == outputRanks[index], "\(module): solved rank \(estimate.rank), laid out \(outputRanks[index])")
    // The floor at the rank written: never above the error.
    let report = LayerReport(
      name: module, shape: [factors.d, factors.k], rank: estimate.rank, normT: geometry.normT, residual: estimate.residual,
      floorResidual: geometry.floorResidual(rank: estimate.rank), p: estimate.p, q: estimate.q, iterations: estimate.iterations,
      rankLimit: rankLimits[index])
    return (estimate, report)
  }

  /// The rules that need no Gram blocks, without their errors: one weighted pass over the factors.
  private func sum(_ index: Int, factors: LayerFactors) throws -> (LayerEstimate, LayerReport) {
    let estimate: LayerEstimate
    if options.method == .stack || options.method == .exact {
      let stacked = Stack.aggregate(factors)
      estimate = LayerEstimate(a: stacked.a, b: stacked.b, residual: nil)
    } else {
      let (a, b) = FedAvg.sum(factors, p: factors.weights, q: factors.weights)
      estimate = LayerEstimate(a: a, b: b, residual: nil)
    }
    return (estimate, unreported(index, estimate))
  }

  /// A layer's report without errors (shapes and ranks), checked against the planned layout.
  private func unreported(_ index: Int, _ estimate: LayerEstimate) -> LayerReport {
    let module = set.moduleNames[index]
    precondition(estimate.rank == outputRanks[index], "\(module): solved rank \(estimate.rank), laid out \(outputRanks[index])")
    return LayerReport(
      name: module, shape: [estimate.b.rows, estimate.a.cols], rank: estimate.rank, normT: nil, residual: nil, floorResidual: nil,
      p: nil, q: nil, iterations: nil, rankLimit: rankLimits[index])
  }
}
