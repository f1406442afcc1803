/// The pieces of a SentencePiece `tokenizer.model` (a protobuf `ModelProto`): text, score and
/// type of each, in id order. Only field 1 (`pieces`) is read; every other field is skipped.
public struct SentencePieceModel: Sendable {
  /// `ModelProto.SentencePiece.Type`.
  public enum PieceType: Int32, Sendable {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
  }

  /// One vocabulary entry; its token id is its index in `pieces`.
  public struct Piece: Sendable, Equatable {
    /// The piece's text as stored (SentencePiece writes a space as U+2581).
    public let text: String
    /// The piece's score (0 when the field is absent).
    public let score: Float
    /// The piece's type (`normal` when the field is absent).
    public let type: PieceType
  }

  /// Every piece, in token id order.
  public let pieces: [Piece]

  /// Reads `tokenizer.model`; every length is checked against the bytes that remain.
  /// - Parameter path: a SentencePiece model file.
  /// - Returns: the pieces, in token id order.
  /// - Throws: ``CheckpointError/badTokenizer(path:message:)`` for a protobuf that is truncated or
  ///   malformed; `io` when it cannot be read.
  /// - Complexity: O(file bytes).
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
