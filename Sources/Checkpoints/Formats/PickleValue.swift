/// What a `torch.save` pickle holds, interpreted, never executed: the opcodes of protocols
/// 2-5 build values, and the only calls are those of `allowed` globals, done by fedlora itself
/// (a dict, a tensor view of a storage). Every other global is recorded, never imported, and
/// makes the pickle refused.
enum PickleValue {
  case none
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string(String)
  case bytes([UInt8])
  case tuple([PickleValue])
  case list(PickleList)
  case dict(PickleDict)
  /// A global that is referenced; `allowed` says whether fedlora knows it.
  case global(PickleGlobal, allowed: Bool)
  /// `torch.*Storage` named by a persistent id: the bytes of `data/KEY` in the archive.
  case storage(dtype: DType, key: String)
  /// `_rebuild_tensor_v2(storage, offset, size, stride, ...)`.
  case tensor(dtype: DType, key: String, offset: Int, shape: [Int], strides: [Int])
  /// The result of something that cannot be built (a call of a global not allowed).
  case opaque
}

/// Lists and dicts are shared by reference, as in Python. One that was fetched from the memo is
/// frozen: `torch.save` never fills a container it has already referenced twice, and refusing
/// to keeps every nesting depth known when it is built (so no teardown recurses past `maxDepth`).
final class PickleList {
  var items: [PickleValue] = []
  var depth = 0
  var frozen = false
}

final class PickleDict {
  var items: [(key: PickleValue, value: PickleValue)] = []
  var depth = 0
  var frozen = false
}
