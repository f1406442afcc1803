/// What a merge found for one adapted weight.
public struct ModuleReport: Sendable {
  /// The module's name.
  public let name: String
  /// `[d, k]`, the update's shape.
  public let shape: [Int]
  /// `R`, the rank written.
  public let rank: Int
  /// `||T||_F`, the ideal update's norm. It, `residual` and `floorResidual` are nil when the
  /// merge computes no errors.
  public let normT: Double?
  /// `||T - Bh Ah||_F` of the merged factors.
  public let residual: Double?
  /// The rank-R floor's residual, `sqrt(sum_{i>R} s_i^2)`.
  public let floorResidual: Double?
  /// `p` of `Ah = sum p_u A_u` (FedAvg's `w`, or FLoRA-NA's solution); nil when not computed.
  public let p: [Double]?
  /// `q` of `Bh = sum q_u Bs_u` (FedAvg's `w`, or FLoRA-NA's solution); nil when not computed.
  public let q: [Double]?
  /// FLoRA-NA's ALS iterations on this module; nil for other rules and shared coefficients.
  public let iterations: Int?
  /// Why the module has fewer components than the rank asked for (nil when it has them all).
  public let rankLimit: RankLimit?

  /// `residual / ||T||`; nil when `T = 0` or the merge computes no errors.
  public var relativeError: Double? { relative(residual, to: normT) }
  /// `floorResidual / ||T||`; nil when `T = 0` or the merge computes no errors.
  public var relativeFloor: Double? { relative(floorResidual, to: normT) }
}
