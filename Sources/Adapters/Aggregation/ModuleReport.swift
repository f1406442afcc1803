/// What a merge found for one adapted weight.
public struct ModuleReport: Sendable {
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
