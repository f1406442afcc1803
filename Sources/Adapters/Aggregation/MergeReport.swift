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
