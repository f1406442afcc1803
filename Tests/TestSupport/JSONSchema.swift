import Checkpoints
import Foundation

/// A JSON Schema (draft 2020-12) validator for the subset fedlora's schemas use (docs/schemas/):
/// `type` (a name or a list; `integer` is a number written without fraction or exponent, so a
/// `4.0` where the contract says integer is caught), `properties`, `required`,
/// `additionalProperties` (bool or schema), `patternProperties` (searched, as the standard
/// says: anchor them), `items`, `enum`, `const`, `oneOf`, `anyOf`, `$ref` to `#` or
/// `#/$defs/NAME`, `minimum`, `minItems`, `pattern`, and boolean schemas. Annotations (`$schema`,
/// `$id`, `title`, `description`, `$comment`, `$defs`) are ignored; any other keyword is reported
/// as an error, so a schema never asks for a check that is silently skipped.
public final class JSONSchema: @unchecked Sendable {
  /// The schema document.
  public let root: JSON
  /// Every `patternProperties` key and `pattern` value, compiled once (NSRegularExpression is
  /// immutable and safe to share between threads).
  private let regexes: [String: NSRegularExpression]

  private static let annotations: Set = ["$schema", "$id", "title", "description", "$comment", "$defs"]
  private static let keywords: Set = [
    "type", "properties", "required", "additionalProperties", "patternProperties", "items", "enum", "const", "oneOf",
    "anyOf", "$ref", "minimum", "minItems", "pattern",
  ]

  /// A schema; an invalid regular expression in it is a thrown error.
  public init(_ root: JSON) throws {
    self.root = root
    var patterns: Set<String> = []
    Self.collectPatterns(root, into: &patterns)
    var regexes: [String: NSRegularExpression] = [:]
    for pattern in patterns { regexes[pattern] = try NSRegularExpression(pattern: pattern) }
    self.regexes = regexes
  }

  /// Parses and compiles the schema in the file at `path`.
  public convenience init(contentsOf path: String) throws {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    try self.init(JSON.parse(text, path: path))
  }

  /// The errors of `instance` against the schema, each `PATH: what is wrong` with a JSON path
  /// (`$.layers[3].rank`); empty when it validates.
  public func validate(_ instance: JSON) -> [String] {
    var errors: [String] = []
    check(instance, root, path: "$", errors: &errors, depth: 0)
    return errors
  }

  /// What is wrong with the schema itself, found by walking every subschema (not only those an
  /// instance reaches): keywords this validator does not implement, `$ref`s that resolve to
  /// nothing, `type` names that do not exist.
  public func problems() -> [String] {
    var problems: [String] = []
    walk(root, path: "#", problems: &problems)
    return problems
  }

  private static let typeNames: Set = ["null", "boolean", "object", "array", "number", "integer", "string"]

  private func walk(_ schema: JSON, path: String, problems: inout [String]) {
    if case .bool = schema { return }
    guard let members = schema.objectValue else { return problems.append("\(path): neither an object nor a boolean") }
    for (key, value) in members {
      switch key {
      case "properties", "patternProperties", "$defs":
        for (name, subschema) in value.objectValue ?? [] {
          walk(subschema, path: path + "/" + key + "/" + name, problems: &problems)
        }
      case "additionalProperties", "items": walk(value, path: path + "/" + key, problems: &problems)
      case "oneOf", "anyOf":
        for (i, subschema) in (value.arrayValue ?? []).enumerated() {
          walk(subschema, path: path + "/\(key)/\(i)", problems: &problems)
        }
      case "$ref":
        if resolve(value) == nil { problems.append("\(path): unresolvable $ref \(value.compactText)") }
      case "type":
        let names = value.arrayValue?.compactMap(\.stringValue) ?? value.stringValue.map { [$0] } ?? []
        if names.isEmpty || !Set(names).isSubset(of: Self.typeNames) {
          problems.append("\(path): bad type \(value.compactText)")
        }
      case _ where Self.keywords.contains(key) || Self.annotations.contains(key): break
      default: problems.append("\(path): unsupported keyword '\(key)'")
      }
    }
  }

  // MARK: Validation

  private func check(_ value: JSON, _ schema: JSON, path: String, errors: inout [String], depth: Int) {
    guard depth < 64 else { return errors.append("\(path): schema nesting deeper than 64 ($ref cycle?)") }
    switch schema {
    case .bool(true): return
    case .bool(false): return errors.append("\(path): not allowed here")
    case .object: break
    default: return errors.append("\(path): the schema is neither an object nor a boolean")
    }
    let keys = Set(schema.objectValue?.map(\.key) ?? [])
    for key in keys.subtracting(Self.keywords).subtracting(Self.annotations).sorted() {
      errors.append("\(path): unsupported schema keyword '\(key)'")
    }
    if let ref = schema["$ref"] {
      guard let target = resolve(ref) else { return errors.append("\(path): unresolvable $ref \(ref.compactText)") }
      check(value, target, path: path, errors: &errors, depth: depth + 1)
    }
    if let type = schema["type"] {
      let names = type.arrayValue?.compactMap(\.stringValue) ?? type.stringValue.map { [$0] } ?? []
      if !names.contains(where: { Self.has(value, type: $0) }) {
        errors.append("\(path): expected \(names.joined(separator: " or ")), found \(Self.describe(value))")
        return  // the other keywords would only repeat the mismatch
      }
    }
    if let constant = schema["const"], constant != value {
      errors.append("\(path): expected \(constant.compactText), found \(Self.describe(value))")
    }
    if let options = schema["enum"]?.arrayValue, !options.contains(value) {
      errors.append(
        "\(path): \(Self.describe(value)) is not one of \(options.map(\.compactText).joined(separator: ", "))")
    }
    if let minimum = schema["minimum"]?.doubleValue, let number = value.doubleValue, number < minimum {
      errors.append("\(path): \(number) is below the minimum \(minimum)")
    }
    if let pattern = schema["pattern"]?.stringValue, let text = value.stringValue, !matches(pattern, text) {
      errors.append("\(path): \(Self.describe(value)) does not match /\(pattern)/")
    }
    if let elements = value.arrayValue {
      if let minItems = schema["minItems"]?.intValue, elements.count < minItems {
        errors.append("\(path): \(elements.count) items, at least \(minItems) required")
      }
      if let items = schema["items"] {
        for (i, element) in elements.enumerated() {
          check(element, items, path: "\(path)[\(i)]", errors: &errors, depth: depth + 1)
        }
      }
    }
    if let members = value.objectValue { checkObject(members, schema, path: path, errors: &errors, depth: depth) }
    if let branches = schema["anyOf"]?.arrayValue {
      let results = branches.map { branch in errorsOf(value, branch, path: path, depth: depth) }
      if !results.contains(where: \.isEmpty) {
        errors.append(Self.noBranch("anyOf", results, path: path))
      }
    }
    if let branches = schema["oneOf"]?.arrayValue {
      let results = branches.map { branch in errorsOf(value, branch, path: path, depth: depth) }
      let passing = results.indices.filter { results[$0].isEmpty }
      if passing.isEmpty {
        errors.append(Self.noBranch("oneOf", results, path: path))
      } else if passing.count > 1 {
        errors.append("\(path): matches oneOf branches \(passing.map(String.init).joined(separator: ", ")), not one")
      }
    }
  }

  private func checkObject(
    _ members: [(key: String, value: JSON)], _ schema: JSON, path: String, errors: inout [String], depth: Int
  ) {
    for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
    where !members.contains(where: { $0.key == name }) {
      errors.append("\(path): missing required key '\(name)'")
    }
    let properties = schema["properties"]
    let patterns = schema["patternProperties"]?.objectValue ?? []
    for (key, member) in members {
      let memberPath = path + Self.step(key)
      var described = false
      if let property = properties?[key] {
        described = true
        check(member, property, path: memberPath, errors: &errors, depth: depth + 1)
      }
      for (pattern, property) in patterns where matches(pattern, key) {
        described = true
        check(member, property, path: memberPath, errors: &errors, depth: depth + 1)
      }
      guard !described, let additional = schema["additionalProperties"] else { continue }
      if additional == .bool(false) {
        errors.append("\(path): unexpected key '\(key)'")
      } else {
        check(member, additional, path: memberPath, errors: &errors, depth: depth + 1)
      }
    }
  }

  private func errorsOf(_ value: JSON, _ schema: JSON, path: String, depth: Int) -> [String] {
    var errors: [String] = []
    check(value, schema, path: path, errors: &errors, depth: depth + 1)
    return errors
  }

  /// No branch matched: the closest one's errors, which is usually the intended form: a branch
  /// of the value's type before one that wants another type (`null` for an object), then the
  /// one with the fewest errors.
  private static func noBranch(_ keyword: String, _ results: [[String]], path: String) -> String {
    func distance(_ errors: [String]) -> (Int, Int) {
      (errors.contains { $0.hasPrefix("\(path): expected ") } ? 1 : 0, errors.count)
    }
    guard let best = results.indices.min(by: { distance(results[$0]) < distance(results[$1]) }) else {
      return "\(path): \(keyword) has no branches"
    }
    return
      "\(path): matches none of the \(results.count) \(keyword) branches; the closest (\(best)) fails with: "
      + results[best].prefix(8).joined(separator: "; ")
  }

  private func resolve(_ ref: JSON) -> JSON? {
    guard let text = ref.stringValue else { return nil }
    if text == "#" { return root }
    guard text.hasPrefix("#/$defs/") else { return nil }
    return root["$defs"]?[String(text.dropFirst("#/$defs/".count))]
  }

  private func matches(_ pattern: String, _ text: String) -> Bool {
    guard let regex = regexes[pattern] else { return false }
    return regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
  }

  // MARK: Helpers

  private static func has(_ value: JSON, type: String) -> Bool {
    switch (type, value) {
    case ("null", .null), ("boolean", .bool), ("string", .string), ("array", .array), ("object", .object),
      ("number", .number):
      true
    case let ("integer", .number(text)): !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
    default: false
    }
  }

  private static func describe(_ value: JSON) -> String {
    switch value {
    case .null: "null"
    case let .bool(b): "boolean \(b)"
    case let .number(n): "number \(n)"
    case let .string(s): "string \(JSON.string(String(s.prefix(60)) + (s.count > 60 ? "..." : "")).compactText)"
    case let .array(a): "array of \(a.count)"
    case .object: "object"
    }
  }

  /// A member's step in a JSON path: `.name`, or `["odd key"]` for keys that are not identifiers.
  private static func step(_ key: String) -> String {
    let plain =
      !key.isEmpty
      && key.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) }
    return plain ? "." + key : "[" + JSON.string(key).compactText + "]"
  }

  private static func collectPatterns(_ schema: JSON, into patterns: inout Set<String>) {
    switch schema {
    case let .object(members):
      for (key, value) in members {
        if key == "patternProperties", let entries = value.objectValue { patterns.formUnion(entries.map(\.key)) }
        if key == "pattern", let pattern = value.stringValue { patterns.insert(pattern) }
        // `enum` and `const` hold values, not schemas: a key named "pattern" in them is data.
        if key != "enum" && key != "const" { collectPatterns(value, into: &patterns) }
      }
    case let .array(elements):
      for element in elements { collectPatterns(element, into: &patterns) }
    default: break
    }
  }
}
