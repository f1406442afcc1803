import Checkpoints

/// Per-module comparison of a client set with its aggregates: `||T||`, each client's cosine to
/// `T` (drift), and the residuals of FedAvg, FLoRA-NA and the rank-R floor (``relative(_:)``
/// divides by `||T||`); with a merged adapter someone else produced, its residual too.
public struct ModuleComparison: Sendable {
  /// The module's name.
  public let name: String
  /// `[d, k]`, the update's shape.
  public let shape: [Int]
  /// `||T||_F`.
  public let normT: Double
  /// `<s_u B_u A_u, T> / (||s_u B_u A_u|| ||T||)` per client (nil for a zero update).
  public let cosines: [Double?]
  /// FedAvg's residual `||T - Bh Ah||_F` (absolute: see ``relative(_:)``).
  public let fedavg: Double
  /// FLoRA-NA's residual, its coefficients solved for this module alone.
  public let floraNA: Double
  /// The rank-R floor's residual, `R` the rank asked for or the clients' largest.
  public let floor: Double
  /// Residual of the merged adapter, when one was given.
  public let against: Double?
  /// The residuals of FedAvg, FLoRA-NA and the SVD floor estimate with their factors rounded
  /// to the merged adapter's dtype, as a merge would store them: the audit compares like with
  /// like, and the change rounding makes is the tolerance of its comparisons.
  public let roundedFedavg: Double?
  /// FLoRA-NA's residual with its factors rounded (nil without a merged adapter).
  public let roundedFloraNA: Double?
  /// The SVD estimate's residual with its factors rounded (nil without a merged adapter).
  public let roundedFloor: Double?

  /// `residual / ||T||`.
  /// - Parameter residual: a residual norm of this module, or nil.
  /// - Returns: the relative error; nil when `T = 0` or `residual` is nil.
  public func relative(_ residual: Double?) -> Double? { Adapters.relative(residual, to: normT) }

  /// Compares the clients of `set` on `module`: `||T||`, the cosines, and the residuals of FedAvg,
  /// FLoRA-NA (solved for this module) and the rank-R floor, all from the Gram blocks, with no `[d, k]`
  /// matrix formed; with `merged`, the audited module's residual and the rules' residuals with their
  /// factors rounded to its dtype.
  /// - Parameters:
  ///   - set: the clients.
  ///   - module: the module's name.
  ///   - rank: the floor's rank; nil for the clients' largest.
  ///   - merged: the audited adapter's module, or nil.
  ///   - flora: FLoRA-NA's solver options.
  /// - Throws: ``AdapterError``: `blas-unavailable`, `not-adapted`, `non-finite` (a client's or the
  ///   audited factors), `shape-mismatch` when `merged` has another shape, `numerical-failure`, or a
  ///   read error.
  /// - Complexity: the clients' factors read once (O(U R (d + k))), the geometry O(N² (d + k)),
  ///   FLoRA-NA's ALS; with `merged`, its factors read once and the rules' estimates formed (O(N R (d +
  ///   k))).
  public init(_ set: ClientSet, module: String, rank: Int?, merged: LoRAModule?, flora: FloraNA.Options = .init())
    throws(AdapterError)
  {
    try LinearAlgebra.load()
    let factors = try ModuleFactors(set, module: module)
    let g = ModuleGeometry(factors)
    name = module
    shape = [factors.d, factors.k]
    normT = g.normT
    // Residuals from the coefficients alone: no merged factors are formed.
    fedavg = g.residualNorm(p: factors.weights, q: factors.weights)
    let solved = FloraNA.solve([g], options: flora)
    floraNA = g.residualNorm(p: solved.p, q: solved.q)
    floor = g.floorResidual(rank: rank ?? factors.maxRank)
    cosines = g.cosinesToT()
    if let merged {
      guard merged.updateShape == shape else {
        throw .shapeMismatch(
          client: merged.a.file.path, module: module, expected: shape, found: merged.updateShape)
      }
      // `A` and `scale * B` in fp64, finiteness checked, in one pass over the stored bytes.
      let widened = try AdapterError.wrap { () throws(CheckpointError) in try merged.widenedFactors() }
      guard let (a, b) = widened else { throw .nonFinite(client: merged.a.file.path, module: module) }
      against = g.residualNorm(b: b, a: a, factors: factors)
      let dtype = merged.b.dtype
      func stored(_ estimate: ModuleEstimate) -> Double {
        g.residualNorm(b: estimate.b.rounded(to: dtype), a: estimate.a.rounded(to: dtype), factors: factors)
      }
      roundedFedavg = stored(FedAvg.combine(factors, geometry: g, p: factors.weights, q: factors.weights))
      roundedFloraNA = stored(FedAvg.combine(factors, geometry: g, p: solved.p, q: solved.q))
      roundedFloor = stored(
        SVDOptimal.aggregate(factors, geometry: g, rank: min(rank ?? factors.maxRank, g.singularValues.count)))
    } else {
      (against, roundedFedavg, roundedFloraNA, roundedFloor) = (nil, nil, nil, nil)
    }
    // Every factor was checked finite as it was read: a figure that is not is the linear
    // algebra's. (Estimates rounded to the audited adapter's dtype may overflow an F16: kept.)
    let figures = [normT, fedavg, floraNA, floor] + [against].compactMap { $0 }
    guard figures.allSatisfy(\.isFinite) else { throw .numericalFailure(module: module) }
  }
}
