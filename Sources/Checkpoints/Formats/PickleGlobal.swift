/// A global a pickle names (`module.name`) and where: what `verify` reports of a pickle.
public struct PickleGlobal: Equatable, Sendable {
  public let module: String
  public let name: String
  /// Byte offset of the opcode in `data.pkl`.
  public let offset: Int
}
