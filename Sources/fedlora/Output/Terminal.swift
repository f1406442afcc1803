import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The two streams: results on stdout, diagnostics on stderr; colour only on a terminal and
/// when `NO_COLOR` is absent or empty.
enum Terminal {
  static let stderrIsTTY = isatty(2) == 1
  static let stdoutIsTTY = isatty(1) == 1
  static let colour = stdoutIsTTY && (getenv("NO_COLOR").map { $0.pointee == 0 } ?? true)

  static func out(_ line: String) { print(line) }

  static func err(_ line: String) { errRaw(line + "\n") }

  static func errRaw(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  }

  static func bold(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
  static func red(_ text: String) -> String { colour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
  static func green(_ text: String) -> String { colour ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
}

extension String {
  /// The text with control characters shown, not interpreted (`\x1b` for ESC): names and
  /// metadata come from files, and a file must not drive the terminal. JSON output keeps the
  /// exact strings.
  var visible: String {
    guard unicodeScalars.contains(where: Self.isControl) else { return self }
    var out = ""
    for scalar in unicodeScalars {
      if Self.isControl(scalar) {
        let hex = String(scalar.value, radix: 16)
        out += "\\x" + String(repeating: "0", count: max(0, 2 - hex.count)) + hex
      } else {
        out.unicodeScalars.append(scalar)
      }
    }
    return out
  }

  private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value)
  }
}
