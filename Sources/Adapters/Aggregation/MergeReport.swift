/// A merge's per-module results and the model-level totals.
public struct MergeReport: Sendable {
  /// The rule the merge used.
  public let method: AggregationMethod
  /// The reports of the modules solved, in module order.
  public let modules: [ModuleReport]
  /// `sqrt(sum ||T_l - est_l||^2) / sqrt(sum ||T_l||^2)`.
  public var modelError: Double? { ratio(\.residual) }
  /// `sqrt(sum floor_l^2) / sqrt(sum ||T_l||^2)`: the model-level rank-R floor.
  public var modelFloor: Double? { ratio(\.floorResidual) }

  private func ratio(_ part: KeyPath<ModuleReport, Double?>) -> Double? {
    var parts: [(residual: Double?, normT: Double)] = []
    for module in modules {
      guard let normT = module.normT else { return nil }
      parts.append((module[keyPath: part], normT))
    }
    return modelRelativeError(parts)
  }
}

/// `residual / ||T||`, nil when `T = 0` (or no residual).
package func relative(_ residual: Double?, to normT: Double?) -> Double? {
  guard let residual, let normT, normT > 0 else { return nil }
  return residual / normT
}

/// The model-level relative error `sqrt(sum_l r_l^2) / sqrt(sum_l ||T_l||^2)` of per-module
/// residuals; nil when `T = 0` or a module has no residual.
package func modelRelativeError(_ modules: [(residual: Double?, normT: Double)]) -> Double? {
  let total = modules.reduce(0) { $0 + $1.normT * $1.normT }
  var sum = 0.0
  for module in modules {
    guard let residual = module.residual else { return nil }
    sum += residual * residual
  }
  return total > 0 ? (sum / total).squareRoot() : nil
}
