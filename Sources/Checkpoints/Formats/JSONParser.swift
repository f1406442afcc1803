/// An object key compared code unit by code unit: JSON keys are equal only byte for byte, while
/// Swift's `String` equality is canonical equivalence (and would make hashing collide by design).
private struct ExactKey: Hashable {
  let key: String
  init(_ key: String) { self.key = key }
  static func == (a: ExactKey, b: ExactKey) -> Bool { a.key.utf8.elementsEqual(b.key.utf8) }
  func hash(into hasher: inout Hasher) {
    if key.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
      Array(key.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
    }
  }
}

/// A strict JSON reader over bytes; `parseMembers` lets a caller stream an object's members.
struct JSONParser {
  let bytes: UnsafeRawBufferPointer
  let path: String
  let baseOffset: Int
  let maxArrayLength: Int
  var position = 0
  static let maxDepth = 128

  func error(_ message: String) -> CheckpointError {
    .invalidJSON(path: path, offset: baseOffset + position, message: message)
  }

  var current: UInt8? { position < bytes.count ? bytes[position] : nil }

  /// Runs `body` on a parser at the document's one value, then checks that nothing follows it.
  static func parseDocument(
    _ bytes: UnsafeRawBufferPointer, path: String, baseOffset: Int, maxArrayLength: Int,
    _ body: (inout JSONParser) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    var parser = JSONParser(bytes: bytes, path: path, baseOffset: baseOffset, maxArrayLength: maxArrayLength)
    parser.skipWhitespace()
    try body(&parser)
    parser.skipWhitespace()
    guard parser.position == bytes.count else { throw parser.error("unexpected text after the JSON value") }
  }

  mutating func skipWhitespace() {
    while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
  }

  mutating func expect(_ literal: String, _ value: JSON) throws(CheckpointError) -> JSON {
    for byte in literal.utf8 {
      guard current == byte else { throw error("expected '\(literal)'") }
      position += 1
    }
    return value
  }

  mutating func parseValue(depth: Int) throws(CheckpointError) -> JSON {
    guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    guard let c = current else { throw error("unexpected end of input") }
    switch c {
    case UInt8(ascii: "{"): return try parseObject(depth: depth)
    case UInt8(ascii: "["): return try parseArray(depth: depth)
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): return try expect("true", .bool(true))
    case UInt8(ascii: "f"): return try expect("false", .bool(false))
    case UInt8(ascii: "n"): return try expect("null", .null)
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    default: throw error("unexpected character '\(Unicode.Scalar(c))'")
    }
  }

  mutating func parseObject(depth: Int) throws(CheckpointError) -> JSON {
    var members: [(key: String, value: JSON)] = []
    try parseMembers(depth: depth) { key, _, parser throws(CheckpointError) in
      members.append((key, try parser.parseValue(depth: depth + 1)))
    }
    return .object(members)
  }

  /// Reads the object at the current position member by member: `body` gets each key, its
  /// offset in the file, and the parser positioned at the value, which it must consume. Keys
  /// are checked unique as they come, so a caller can keep what it needs and no tree at all.
  mutating func parseMembers(
    depth: Int, _ body: (String, Int, inout JSONParser) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
    guard current == UInt8(ascii: "{") else { throw error("expected an object") }
    position += 1
    var seen = Set<ExactKey>()
    skipWhitespace()
    if current == UInt8(ascii: "}") {
      position += 1
      return
    }
    while true {
      skipWhitespace()
      guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
      let keyOffset = baseOffset + position
      let key = try parseString()
      guard seen.insert(ExactKey(key)).inserted else { throw .duplicateKey(path: path, key: key, offset: keyOffset) }
      skipWhitespace()
      guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
      position += 1
      skipWhitespace()
      try body(key, keyOffset, &self)
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "}"):
        position += 1
        return
      default: throw error("expected ',' or '}'")
      }
    }
  }

  mutating func parseArray(depth: Int) throws(CheckpointError) -> JSON {
    position += 1
    var elements: [JSON] = []
    skipWhitespace()
    if current == UInt8(ascii: "]") {
      position += 1
      return .array(elements)
    }
    while true {
      skipWhitespace()
      guard elements.count < maxArrayLength else { throw error("an array of more than \(maxArrayLength) elements") }
      elements.append(try parseValue(depth: depth + 1))
      skipWhitespace()
      switch current {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "]"):
        position += 1
        return .array(elements)
      default: throw error("expected ',' or ']'")
      }
    }
  }

  mutating func parseNumber() throws(CheckpointError) -> JSON {
    let start = position
    if current == UInt8(ascii: "-") { position += 1 }
    func digits(_ p: inout Self) -> Int {
      let s = p.position
      while let c = p.current, c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") { p.position += 1 }
      return p.position - s
    }
    guard digits(&self) > 0 else { throw error("expected digits") }
    if current == UInt8(ascii: ".") {
      position += 1
      guard digits(&self) > 0 else { throw error("expected digits after '.'") }
    }
    if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
      position += 1
      if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
      guard digits(&self) > 0 else { throw error("expected exponent digits") }
    }
    return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
  }

  mutating func parseString() throws(CheckpointError) -> String {
    position += 1
    let stringStart = position
    var scalars: [UInt8] = []
    var runStart = position
    while true {
      guard let c = current else { throw error("unterminated string") }
      if c == UInt8(ascii: "\"") { break }
      if c < 0x20 { throw error("control character in string") }
      if c == UInt8(ascii: "\\") {
        scalars.append(contentsOf: bytes[runStart..<position])
        position += 1
        try appendEscape(&scalars)
        runStart = position
        continue
      }
      position += 1
    }
    let end = position
    position += 1
    // Without escapes the string is its bytes in the file: validated in place, no copy.
    let validated =
      runStart == stringStart
      ? String(validating: UnsafeRawBufferPointer(rebasing: bytes[stringStart..<end]), as: UTF8.self)
      : String(validating: scalars + bytes[runStart..<end], as: UTF8.self)
    guard let string = validated else {
      throw .invalidUTF8(path: path, offset: baseOffset + firstInvalidUTF8(stringStart..<end))
    }
    return string
  }

  func firstInvalidUTF8(_ range: Range<Int>) -> Int {
    var decoder = UTF8()
    var iterator = bytes[range].makeIterator()
    var offset = range.lowerBound
    while true {
      switch decoder.decode(&iterator) {
      case let .scalarValue(scalar): offset += UTF8.width(scalar)
      case .emptyInput: return offset
      case .error: return offset
      }
    }
  }

  mutating func appendEscape(_ out: inout [UInt8]) throws(CheckpointError) {
    guard let c = current else { throw error("unterminated escape") }
    position += 1
    switch c {
    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
    case UInt8(ascii: "b"): out.append(0x08)
    case UInt8(ascii: "f"): out.append(0x0C)
    case UInt8(ascii: "n"): out.append(0x0A)
    case UInt8(ascii: "r"): out.append(0x0D)
    case UInt8(ascii: "t"): out.append(0x09)
    case UInt8(ascii: "u"):
      var code = try hex4()
      if (0xD800..<0xDC00).contains(code) {
        guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
          throw error("unpaired surrogate")
        }
        position += 2
        let low = try hex4()
        guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
      } else if (0xDC00..<0xE000).contains(code) {
        throw error("unpaired surrogate")
      }
      guard let scalar = Unicode.Scalar(code) else { throw error("invalid \\u escape") }
      out.append(contentsOf: Array(String(Character(scalar)).utf8))
    default: throw error("invalid escape '\\\(Unicode.Scalar(c))'")
    }
  }

  mutating func hex4() throws(CheckpointError) -> UInt32 {
    guard position + 4 <= bytes.count,
      let value = UInt32(
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[position..<position + 4]), as: UTF8.self), radix: 16)
    else { throw error("expected four hex digits") }
    position += 4
    return value
  }
}
