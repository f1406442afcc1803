#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
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
