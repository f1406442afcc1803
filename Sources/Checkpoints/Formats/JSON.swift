/// A JSON value that keeps object key order and number text exactly as written.
///
/// Foundation's decoders silently keep one of two duplicate keys and round integers above 2^53;
/// headers and configs need neither, so fedlora parses JSON itself.
public enum JSON: Equatable, Sendable {
  case null
  case bool(Bool)
  /// The literal text of the number, so 64-bit offsets survive unrounded.
  case number(String)
  case string(String)
  case array([JSON])
  case object([(key: String, value: JSON)])

  /// Objects are equal with the same members in the same order; numbers when their texts or `Double`
  /// values match.
  /// - Parameters:
  ///   - lhs: a value.
  ///   - rhs: another value.
  /// - Returns: whether they are equal.
  public static func == (lhs: JSON, rhs: JSON) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): true
    case let (.bool(a), .bool(b)): a == b
    case let (.number(a), .number(b)): a == b || Double(a) == Double(b)
    case let (.string(a), .string(b)): a == b
    case let (.array(a), .array(b)): a == b
    case let (.object(a), .object(b)):
      a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: false
    }
  }

  /// A number; an integral value keeps a `.0` (`16.0`), as Python's json writes floats.
  /// - Parameter value: the number.
  public init(_ value: Double) { self = .number(JSON.format(value)) }
  /// An integer number.
  /// - Parameter value: the number.
  public init(_ value: Int) { self = .number(String(value)) }
  /// An unsigned integer number, exact above 2^53.
  /// - Parameter value: the number.
  public init(_ value: UInt64) { self = .number(String(value)) }

  /// The value for `key` in an object (nil for other kinds or a missing key).
  /// - Parameter key: a member name.
  /// - Complexity: O(n) in the object's members.
  public subscript(key: String) -> JSON? {
    guard case let .object(members) = self else { return nil }
    return members.first { $0.key == key }?.value
  }

  /// The text of a `.string`; nil for other kinds.
  public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
  /// The value of a `.bool`; nil for other kinds.
  public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
  /// The elements of an `.array`; nil for other kinds.
  public var arrayValue: [JSON]? { if case let .array(a) = self { a } else { nil } }
  /// The members of an `.object`, in file order; nil for other kinds.
  public var objectValue: [(key: String, value: JSON)]? { if case let .object(o) = self { o } else { nil } }
  /// A `.number` as a Double (rounded to the nearest); nil for other kinds.
  public var doubleValue: Double? { if case let .number(n) = self { Double(n) } else { nil } }
  /// A non-negative integer written without fraction or exponent, as safetensors requires.
  public var uint64Value: UInt64? { if case let .number(n) = self { UInt64(n) } else { nil } }
  /// An integer, also accepting integral floats such as `16.0` (Python configs write these).
  public var intValue: Int? {
    guard case let .number(n) = self else { return nil }
    if let i = Int(n) { return i }
    if let d = Double(n), d == d.rounded(), abs(d) < 1e15 { return Int(d) }
    return nil
  }

  /// A copy with `key` set to `value`, replaced in place or appended (for editing a config).
  /// - Parameters:
  ///   - key: the member name.
  ///   - value: its new value.
  /// - Returns: the changed object; any other kind of value unchanged.
  public func setting(_ key: String, to value: JSON) -> JSON {
    guard case var .object(members) = self else { return self }
    if let index = members.firstIndex(where: { $0.key == key }) {
      members[index].value = value
    } else {
      members.append((key, value))
    }
    return .object(members)
  }

  static func format(_ value: Double) -> String {
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) + ".0" }
    return "\(value)"
  }
}

// MARK: Parsing

extension JSON {
  /// Parses UTF-8 bytes strictly: one value, optional surrounding whitespace, no duplicate keys.
  /// Errors name `path` and the byte offset in the file (`baseOffset` + position).
  /// `maxArrayLength` bounds every array (a safetensors header's arrays are shapes and offsets:
  /// a 50-million-dimension shape would cost gigabytes as values before anyone could refuse it).
  ///
  /// - Parameters:
  ///   - bytes: the document's bytes.
  ///   - path: the file named in errors.
  ///   - baseOffset: the offset of `bytes[0]` in that file.
  ///   - maxArrayLength: the most elements any array may have.
  /// - Returns: the value.
  /// - Throws: ``CheckpointError``: `invalid-json` (with the offset and what was expected),
  ///   `invalid-utf8`, `duplicate-key`.
  /// - Complexity: O(bytes); nesting is bounded (128 levels), so no document can exhaust the stack.
  public static func parse(
    _ bytes: UnsafeRawBufferPointer, path: String, baseOffset: Int = 0, maxArrayLength: Int = .max
  ) throws(CheckpointError) -> JSON {
    var value = JSON.null
    try JSONParser.parseDocument(bytes, path: path, baseOffset: baseOffset, maxArrayLength: maxArrayLength) {
      parser throws(CheckpointError) in value = try parser.parseValue(depth: 0)
    }
    return value
  }

  /// Parses bytes held in memory (a config or index file), as
  /// ``parse(_:path:baseOffset:maxArrayLength:)``.
  /// - Parameters:
  ///   - bytes: the document's bytes.
  ///   - path: the file named in errors.
  /// - Returns: the value.
  /// - Throws: ``CheckpointError``: `invalid-json`, `invalid-utf8`, `duplicate-key`.
  public static func parse(_ bytes: [UInt8], path: String) throws(CheckpointError) -> JSON {
    try bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try parse(raw, path: path) } }.get()
  }

  /// Parses a string (a config file read into memory), as ``parse(_:path:baseOffset:maxArrayLength:)``.
  /// - Parameters:
  ///   - text: the document.
  ///   - path: the file named in errors.
  /// - Returns: the value.
  /// - Throws: ``CheckpointError``: `invalid-json`, `duplicate-key`.
  public static func parse(_ text: String, path: String) throws(CheckpointError) -> JSON {
    var copy = text
    return try copy.withUTF8 { buffer in
      Result { () throws(CheckpointError) in try parse(UnsafeRawBufferPointer(buffer), path: path) }
    }.get()
  }
}

// MARK: Writing

extension JSON {
  /// Compact JSON text (no spaces), keys in stored order.
  public var compactText: String {
    var out = ""
    write(to: &out, indent: nil, level: 0)
    return out
  }

  /// Indented JSON text (two spaces) ending in a newline, as Python's `json.dumps(indent=2)`.
  public var prettyText: String {
    var out = ""
    write(to: &out, indent: "  ", level: 0)
    return out + "\n"
  }

  private func write(to out: inout String, indent: String?, level: Int) {
    // Only containers need the line breaks (built per container, not per value).
    var newline: String { indent.map { "\n" + String(repeating: $0, count: level + 1) } ?? "" }
    var closing: String { indent.map { "\n" + String(repeating: $0, count: level) } ?? "" }
    switch self {
    case .null: out += "null"
    case let .bool(b): out += b ? "true" : "false"
    case let .number(n): out += n
    case let .string(s): JSON.writeString(s, to: &out)
    case let .array(elements):
      guard !elements.isEmpty else {
        out += "[]"
        return
      }
      out += "["
      let newline = newline
      for (i, element) in elements.enumerated() {
        out += (i == 0 ? "" : ",") + newline
        element.write(to: &out, indent: indent, level: level + 1)
      }
      out += closing + "]"
    case let .object(members):
      guard !members.isEmpty else {
        out += "{}"
        return
      }
      out += "{"
      let newline = newline
      for (i, member) in members.enumerated() {
        out += (i == 0 ? "" : ",") + newline
        JSON.writeString(member.key, to: &out)
        out += indent == nil ? ":" : ": "
        member.value.write(to: &out, indent: indent, level: level + 1)
      }
      out += closing + "}"
    }
  }

  static func writeString(_ s: String, to out: inout String) {
    out += "\""
    // Most strings (tensor names, keys) need no escape: appended whole.
    if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
      out += s
      out += "\""
      return
    }
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: out.unicodeScalars.append(scalar)
      }
    }
    out += "\""
  }
}
