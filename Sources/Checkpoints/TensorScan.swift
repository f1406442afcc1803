/// What a full read of one tensor's data found: non-finite values and a checksum.
public struct TensorScan: Sendable, Equatable {
  /// NaN values found (0 when `valuesChecked` is false).
  public let nanCount: Int
  /// Infinite values found, of either sign (0 when `valuesChecked` is false).
  public let infCount: Int
  /// zlib CRC-32 of the raw bytes on disk.
  public let crc32: UInt32
  /// False for dtypes whose values fedlora cannot decode (their NaN/Inf counts are 0 by default).
  public let valuesChecked: Bool

  /// Reads every byte of `tensor` once, a slice at a time, releasing pages as it goes: the CRC-32 of
  /// the bytes and, for float dtypes, the NaN and infinite values among them.
  ///
  /// - Parameter tensor: the tensor to scan.
  /// - Throws: ``CheckpointError``: `io` when its file cannot be mapped again (or changed on disk).
  /// - Complexity: O(`byteCount`) read once (and O(elements) widened for float dtypes); memory O(one
  ///   slice).
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
