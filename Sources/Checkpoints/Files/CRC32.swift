import CZlib

/// zlib's CRC-32 (the checksum of gzip and PNG) of a byte range; `continuing` the CRC of the
/// bytes before it.
package func crc32(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
  var crc = UInt(previous)
  var remaining = bytes
  // zlib takes a 32-bit length: feed large tensors in chunks.
  while let start = remaining.baseAddress, !remaining.isEmpty {
    let chunk = min(remaining.count, 1 << 30)
    crc = CZlib.crc32(crc, start.assumingMemoryBound(to: UInt8.self), uInt(chunk))
    remaining = UnsafeRawBufferPointer(rebasing: remaining[chunk...])
  }
  return UInt32(crc)
}
