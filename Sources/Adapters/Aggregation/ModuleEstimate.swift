/// One rule's result for one module: factors `Bh` `[d, R]`, `Ah` `[R, k]` with their scale folded
/// in, and how far `Bh Ah` is from the ideal update.
public struct ModuleEstimate: Sendable {
  /// `Ah`, `[R, k]`.
  public let a: Matrix
  /// `Bh`, `[d, R]`, scale folded in.
  public let b: Matrix
  /// `||T - Bh Ah||_F` (nil when the merge computes no errors).
  public let residual: Double?
  /// FLoRA-NA's coefficients and iterations, for reports.
  public var p: [Double]? = nil
  /// `q` of `Bh = sum q_u Bs_u` (FedAvg's `w` or FLoRA-NA's); nil for other rules or without errors.
  public var q: [Double]? = nil
  /// FLoRA-NA's ALS iterations on this module; nil for other rules and shared coefficients.
  public var iterations: Int? = nil

  /// `R`, the estimate's rank (`Ah`'s rows).
  public var rank: Int { a.rows }
}
