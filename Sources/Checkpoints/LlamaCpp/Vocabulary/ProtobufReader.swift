/// Protobuf wire format over a byte array: varints, fixed 32/64-bit values and length-delimited
/// fields, each bounds-checked. Groups (wire types 3 and 4) are refused.
struct ProtobufReader {
  let bytes: [UInt8]
  let path: String
  private(set) var position: Int
  let end: Int

  init(bytes: [UInt8], path: String, range: Range<Int>? = nil) {
    self.bytes = bytes
    self.path = path
    position = range?.lowerBound ?? 0
    end = range?.upperBound ?? bytes.count
  }

  private func failure(_ message: String) -> CheckpointError {
    .badTokenizer(path: path, message: "\(message) at byte offset \(position)")
  }

  mutating func varint() throws(CheckpointError) -> UInt64 {
    var value: UInt64 = 0
    for shift in stride(from: 0, to: 64, by: 7) {
      guard position < end else { throw failure("truncated varint") }
      let byte = bytes[position]
      position += 1
      value |= UInt64(byte & 0x7F) << UInt64(shift)
      if byte & 0x80 == 0 { return value }
    }
    throw failure("varint longer than 10 bytes")
  }

  /// The next field's number and wire type, or nil at the end of the message.
  mutating func nextField() throws(CheckpointError) -> (field: UInt64, wire: UInt8)? {
    guard position < end else { return nil }
    let tag = try varint()
    return (tag >> 3, UInt8(tag & 7))
  }

  mutating func fixed32() throws(CheckpointError) -> UInt32 {
    try require(4)
    let value = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[position + $1]) << UInt32(8 * $1) }
    position += 4
    return value
  }

  mutating func lengthDelimited() throws(CheckpointError) -> Range<Int> {
    let length = try varint()
    try require(length)
    let range = position..<(position + Int(length))
    position = range.upperBound
    return range
  }

  /// The embedded message of a length-delimited field.
  mutating func nested() throws(CheckpointError) -> ProtobufReader {
    ProtobufReader(bytes: bytes, path: path, range: try lengthDelimited())
  }

  mutating func skip(wire: UInt8) throws(CheckpointError) {
    switch wire {
    case 0: _ = try varint()
    case 1:
      try require(8)
      position += 8
    case 2: _ = try lengthDelimited()
    case 5:
      try require(4)
      position += 4
    default: throw failure("unsupported protobuf wire type \(wire)")
    }
  }

  private func require(_ count: UInt64) throws(CheckpointError) {
    guard count <= UInt64(end - position) else { throw failure("field of \(count) bytes runs past the end") }
  }
}
