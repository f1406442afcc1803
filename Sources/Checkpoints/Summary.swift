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

/// What a full read of one tensor's data found: non-finite values and a checksum.
public struct TensorScan: Sendable, Equatable {
  public let nanCount: Int
  public let infCount: Int
  /// zlib CRC-32 of the raw bytes on disk.
  public let crc32: UInt32
  /// False for dtypes whose values fedlora cannot decode (their NaN/Inf counts are 0 by default).
  public let valuesChecked: Bool

  /// Reads every byte of `tensor` once, a slice at a time, releasing pages as it goes.
  public init(_ tensor: Tensor) throws(CheckpointError) {
    var nan = 0
    var inf = 0
    let floating = tensor.dtype.isComputable
    if floating {
      var crc: UInt32 = 0
      try tensor.forEachWidenedSlice { _, raw, values in
        crc = Checkpoints.crc32(raw, continuing: crc)
        for value in values where !value.isFinite {
          if value.isNaN { nan += 1 } else { inf += 1 }
        }
      }
      crc32 = crc
    } else {
      crc32 = try tensor.withBytes { Checkpoints.crc32($0) }
      tensor.file.done(with: tensor.offset..<(tensor.offset + tensor.byteCount))
    }
    nanCount = nan
    infCount = inf
    valuesChecked = floating || tensor.dtype.isInteger
  }
}
