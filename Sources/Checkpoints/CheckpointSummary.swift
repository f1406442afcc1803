/// Header-level facts about a checkpoint: counts, sizes and the dtype mix. Reads no tensor data.
public struct CheckpointSummary: Sendable {
  /// Totals over the tensors of one dtype.
  public struct DTypeCount: Sendable {
    /// Tensors of this dtype.
    public var tensors = 0
    /// Elements in those tensors.
    public var parameters = 0
    /// Bytes of data in those tensors (their `byteCount`s added up).
    public var bytes = 0
  }

  /// Tensors in the checkpoint, across every shard.
  public let tensorCount: Int
  /// Elements of every tensor added up.
  public let parameterCount: Int
  /// Every tensor's `byteCount` added up: data only, no headers or padding.
  public let dataBytes: Int
  /// Sizes on disk of the files holding tensor data (every shard; a sharded index is not counted).
  public let fileBytes: Int
  /// Per dtype, in order of first appearance.
  public let dtypes: [(dtype: DType, count: DTypeCount)]

  /// Adds up `checkpoint`'s header facts; reads no tensor data.
  /// - Parameter checkpoint: an opened checkpoint.
  /// - Complexity: O(n) in the number of tensors.
  public init(_ checkpoint: Checkpoint) {
    var order: [DType] = []
    var counts: [DType: DTypeCount] = [:]
    for tensor in checkpoint.tensors {
      if counts[tensor.dtype] == nil { order.append(tensor.dtype) }
      counts[tensor.dtype, default: DTypeCount()].tensors += 1
      counts[tensor.dtype, default: DTypeCount()].parameters += tensor.elementCount
      counts[tensor.dtype, default: DTypeCount()].bytes += tensor.byteCount
    }
    tensorCount = checkpoint.tensors.count
    parameterCount = checkpoint.tensors.reduce(0) { $0 + $1.elementCount }
    dataBytes = checkpoint.tensors.reduce(0) { $0 + $1.byteCount }
    fileBytes = checkpoint.files.reduce(0) { $0 + $1.size }
    dtypes = order.map { ($0, counts[$0] ?? DTypeCount()) }
  }
}
