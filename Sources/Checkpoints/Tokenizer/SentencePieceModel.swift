/// The pieces of a SentencePiece `tokenizer.model` (a protobuf `ModelProto`): text, score and
/// type of each, in id order. Only field 1 (`pieces`) is read; every other field is skipped.
public struct SentencePieceModel: Sendable {
  /// `ModelProto.SentencePiece.Type`.
  public enum PieceType: Int32, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
  }

  public struct Piece: Sendable, Equatable {
    public let text: String
    public let score: Float
    public let type: PieceType
  }

  public let pieces: [Piece]

  /// Reads `tokenizer.model`; every length is checked against the bytes that remain.
  public static func read(_ path: String) throws(CheckpointError) -> SentencePieceModel {
    let bytes = try MappedFile.contents(of: path)
    var model = ProtobufReader(bytes: bytes, path: path)
    var pieces: [Piece] = []
    while let (field, wire) = try model.nextField() {
      guard field == 1, wire == 2 else {
        try model.skip(wire: wire)
        continue
      }
      pieces.append(try piece(model.nested(), id: pieces.count))
    }
    guard !pieces.isEmpty else { throw .badTokenizer(path: path, message: "no pieces: not a SentencePiece model") }
    return SentencePieceModel(pieces: pieces)
  }

  private static func piece(_ message: ProtobufReader, id: Int) throws(CheckpointError) -> Piece {
    var message = message
    var text: String?
    var score: Float = 0
    var type = PieceType.normal
    while let (field, wire) = try message.nextField() {
      switch (field, wire) {
      case (1, 2):
        let range = try message.lengthDelimited()
        guard let string = String(validating: message.bytes[range], as: UTF8.self) else {
          throw .badTokenizer(
            path: message.path, message: "piece \(id) at byte offset \(range.lowerBound) is not UTF-8")
        }
        text = string
      case (2, 5): score = Float(bitPattern: try message.fixed32())
      case (3, 0):
        let raw = try message.varint()
        guard let known = PieceType(rawValue: Int32(truncatingIfNeeded: raw)) else {
          throw .badTokenizer(path: message.path, message: "piece \(id) has unknown type \(raw)")
        }
        type = known
      default: try message.skip(wire: wire)
      }
    }
    guard let text else { throw .badTokenizer(path: message.path, message: "piece \(id) has no text") }
    return Piece(text: text, score: score, type: type)
  }
}

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
