/// One rule's result for one layer: factors `Bh` `[d, R]`, `Ah` `[R, k]` with their scale folded
/// in, and how far `Bh Ah` is from the ideal update.
public struct ModuleEstimate: Sendable {
  public let a: Matrix
  public let b: Matrix
  /// `||T - Bh Ah||_F` (nil when the merge computes no errors).
  public let residual: Double?
  /// FLoRA-NA's coefficients and iterations, for reports.
  public var p: [Double]? = nil
  public var q: [Double]? = nil
  public var iterations: Int? = nil

  public var rank: Int { a.rows }
}
