import Checkpoints
import Dispatch

/// Options of an adapter merge.
public struct MergeOptions: Sendable {
  public var method: Method
  /// Output rank for `svd` (default: the clients' largest rank).
  public var rank: Int?
  /// One FLoRA-NA `(p, q)` shared by all layers instead of one per layer.
  public var sharedCoefficients = false
  public var flora = FloraNA.Options()

  public init(method: Method) { self.method = method }
}

/// What a merge found for one adapted weight.
public struct LayerReport: Sendable {
  public let name: String
  public let shape: [Int]
  public let rank: Int
  public let normT: Double
  /// `||T - Bh Ah||_F` of the merged factors.
  public let residual: Double
  /// The rank-R floor's residual, for comparison.
  public let floorResidual: Double
  public let p: [Double]?
  public let q: [Double]?
  public let iterations: Int?

  public var relativeError: Double? { relative(residual, to: normT) }
  public var relativeFloor: Double? { relative(floorResidual, to: normT) }
}

/// A merge's per-layer results and the model-level totals.
public struct MergeReport: Sendable {
  public let method: Method
  public let layers: [LayerReport]
  /// `sqrt(sum ||T_l - est_l||^2) / sqrt(sum ||T_l||^2)`.
  public var modelError: Double? { ratio(\.residual) }
  public var modelFloor: Double? { ratio(\.floorResidual) }

  private func ratio(_ part: KeyPath<LayerReport, Double>) -> Double? {
    modelRelativeError(layers.map { ($0[keyPath: part], $0.normT) })
  }
}

/// `residual / ||T||`, nil when `T = 0` (or no residual).
public func relative(_ residual: Double?, to normT: Double) -> Double? {
  guard let residual, normT > 0 else { return nil }
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
  private let shared: (p: [Double], q: [Double])?
  private let slots: [Slot]

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
    if let dora = set.clients.first(where: \.isDoRA) { throw AdapterError.doraNotMergeable(path: dora.path) }
    self.set = set
    self.options = options
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
        let (estimate, report) = try solve(set.moduleNames[index])
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
    let (estimate, report) = try solve(set.moduleNames[index], factors: factors)
    slots[index].lock.sync {
      slots[index].report = report
      if options.method == .fedex { slots[index].estimate = estimate }
    }
    return (estimate, factors)
  }

  private func solve(_ module: String) throws -> (LayerEstimate, LayerReport) {
    try solve(module, factors: try LayerFactors(set, module: module))
  }

  private func solve(_ module: String, factors: LayerFactors) throws -> (LayerEstimate, LayerReport) {
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
    case .svd: estimate = SVDOptimal.aggregate(factors, geometry: geometry, rank: options.rank ?? factors.maxRank)
    case .stack, .exact: estimate = Stack.aggregate(factors)
    case .fedex: estimate = FedAvg.aggregate(factors, geometry: geometry)
    }
    let floorRank = options.method == .stack || options.method == .exact ? estimate.rank : (options.rank ?? factors.maxRank)
    let report = LayerReport(
      name: module, shape: [factors.d, factors.k], rank: estimate.rank, normT: geometry.normT, residual: estimate.residual,
      floorResidual: geometry.floorResidual(rank: floorRank), p: estimate.p, q: estimate.q, iterations: estimate.iterations)
    return (estimate, report)
  }
}
