/// Header-level facts about a checkpoint: counts, sizes and the dtype mix. Reads no tensor data.
public struct CheckpointSummary: Sendable {
  public struct DTypeCount: Sendable {
    public var tensors = 0
    public var parameters = 0
    public var bytes = 0
  }

  public let tensorCount: Int
  public let parameterCount: Int
  public let dataBytes: Int
  public let fileBytes: Int
  /// Per dtype, in order of first appearance.
  public let dtypes: [(dtype: DType, count: DTypeCount)]

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
