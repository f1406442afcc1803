/// The bytes of several output tensors computed together, in one call, on the thread that
/// writes them: a solved module's factors, which come from one solve. Nothing is kept once
/// written.
public final class JointFill: Sendable {
  private let compute: @Sendable () throws -> [[UInt8]]

  /// `compute` returns each part's bytes, in part order.
  public init(_ compute: @escaping @Sendable () throws -> [[UInt8]]) { self.compute = compute }

  func parts() throws -> [[UInt8]] { try compute() }

  /// Part `index` alone (a reader that wants one tensor's rows).
  func part(_ index: Int, byteCount: Int) throws -> [UInt8] {
    let parts = try compute()
    precondition(
      parts[index].count == byteCount, "part \(index): \(parts[index].count) bytes computed, \(byteCount) laid out")
    return parts[index]
  }
}
