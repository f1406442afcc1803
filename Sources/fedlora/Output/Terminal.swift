#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
import Adapters
import ArgumentParser
import Checkpoints

/// Where output goes: results on stdout, diagnostics on stderr; colour and progress only on a TTY.
enum Terminal {
  static let stderrIsTTY = isatty(2) == 1
  static let stdoutIsTTY = isatty(1) == 1
  static let colour = stdoutIsTTY && getenv("NO_COLOR") == nil

  static func out(_ line: String) { print(line) }

  static func err(_ line: String) { errRaw(line + "\n") }

  static func errRaw(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
  }

  static func warn(_ message: String) { err("fedlora: warning: \(message)") }

  static func bold(_ text: String) -> String { colour ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
  static func red(_ text: String) -> String { colour ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
  static func green(_ text: String) -> String { colour ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
}

/// Reports a failure the way every command does: a line on stderr (and, with `--json`, an error
/// object on stdout), then exit status 1.
func fail(_ error: any Error, json: Bool) -> ExitCode {
  let message = String(describing: error)
  let code = (error as? CheckpointError)?.code ?? (error as? AdapterError)?.code ?? "error"
  if json {
    Terminal.out(JSON.object([("ok", .bool(false)), ("error", .object([("code", .string(code)), ("message", .string(message))]))]).prettyText)
  }
  Terminal.err("fedlora: error: \(message)")
  return .failure
}

