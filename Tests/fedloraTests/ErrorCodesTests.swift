import Foundation
import TestSupport
import Testing

/// docs/errors.md lists every code the CLI can print. The codes are read from the sources: the
/// `code` properties of CheckpointError and AdapterError (their cases carry values, so they
/// cannot be enumerated at run time), and the codes the commands write themselves.
@Suite("docs/errors.md lists every error code")
struct ErrorCodesTests {
  static func read(_ path: String) throws -> String {
    try String(contentsOfFile: CLI.packageRoot + "/" + path, encoding: .utf8)
  }

  static func matches(_ pattern: String, in text: String) throws -> [String] {
    let regex = try NSRegularExpression(pattern: pattern)
    return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { match in
      Range(match.range(at: 1), in: text).map { String(text[$0]) }
    }
  }

  /// The string literals of an error enum's `code` property.
  static func enumCodes(_ path: String) throws -> Set<String> {
    let source = try read(path)
    let start = try #require(source.range(of: "public var code: String {"))
    let end = try #require(
      source.range(of: "public var description: String {", range: start.upperBound..<source.endIndex))
    return Set(try matches(#""([a-z0-9]+(?:-[a-z0-9]+)*)""#, in: String(source[start.upperBound..<end.lowerBound])))
  }

  /// The codes the commands write themselves: `code: "..."` arguments, `("code", .string("..."))`
  /// members, the `failure = ("...", ...)` of inspect's checks, and the fallback `?? "..."`.
  static func commandCodes() throws -> Set<String> {
    let folder = CLI.packageRoot + "/Sources/fedlora"
    var codes: Set<String> = []
    let files = try #require(FileManager.default.enumerator(atPath: folder)).compactMap { $0 as? String }
    for file in files where file.hasSuffix(".swift") {
      let source = try read("Sources/fedlora/" + file)
      for pattern in [
        #"\bcode: "([a-z0-9-]+)""#, #"\("code", \.string\("([a-z0-9-]+)"\)\)"#, #"failure = \(\s*"([a-z0-9-]+)""#,
        #"\.code \?\? "([a-z0-9-]+)""#,
      ] {
        codes.formUnion(try matches(pattern, in: source))
      }
    }
    return codes
  }

  @Test("Every code the sources can print has a row in docs/errors.md, and every row a code the sources print")
  func complete() throws {
    let checkpoint = try Self.enumCodes("Sources/Checkpoints/CheckpointError.swift")
    let adapter = try Self.enumCodes("Sources/Adapters/AdapterError.swift")
    let commands = try Self.commandCodes()
    // The scan itself: it must find what is known to be there, or it proves nothing.
    #expect(checkpoint.count >= 50 && checkpoint.isSuperset(of: ["io", "bad-magic", "format-cannot-hold-any"]))
    #expect(adapter.count >= 20 && adapter.isSuperset(of: ["shape-mismatch", "numerical-failure"]))
    #expect(
      commands.isSuperset(of: [
        "usage", "verify-failed", "unsafe-global", "bad-crc", "non-finite", "unreadable-modules",
        "expectation-failed", "expectation-unverifiable", "error",
      ]), "\(commands.sorted())")
    let documented = Set(try Self.matches(#"(?m)^\| `([a-z0-9-]+)` \|"#, in: Self.read("docs/errors.md")))
    let printed = checkpoint.union(adapter).union(commands)
    #expect(
      printed.subtracting(documented).isEmpty, "not in docs/errors.md: \(printed.subtracting(documented).sorted())")
    let stale = documented.subtracting(printed)
    #expect(stale.isEmpty, "in docs/errors.md but printed by no source: \(stale.sorted())")
  }

  @Test("Every code's row gives the exit status the CLI ends with: 64 for usage codes, else 1")
  func exitStatuses() throws {
    let rows = try Self.matches(#"(?m)^(\| `[a-z0-9-]+` \| [0-9]+ \|)"#, in: Self.read("docs/errors.md"))
    // The codes Session gives exit 64 (its `usageCodes`).
    let session = try Self.read("Sources/fedlora/Output/Session.swift")
    let list = try #require(try Self.matches(#"usageCodes: Set = \[([^\]]*)\]"#, in: session).first)
    let usage = Set(try Self.matches(#""([a-z0-9-]+)""#, in: list))
    #expect(usage.contains("usage") && usage.contains("output-is-input"))
    for row in rows {
      let parts = row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      let code = parts[0].trimmingCharacters(in: ["`"])
      #expect(parts[1] == (usage.contains(code) ? "64" : "1"), "\(row)")
    }
    #expect(rows.count > 80)
  }
}
