/// A global a pickle names (`module.name`) and where: what `verify` reports of a pickle.
public struct PickleGlobal: Equatable, Sendable {
  /// The module, as `torch._utils` in `torch._utils._rebuild_tensor_v2`.
  public let module: String
  /// The name inside the module, as `_rebuild_tensor_v2`.
  public let name: String
  /// Byte offset of the opcode in `data.pkl`.
  public let offset: Int
}
