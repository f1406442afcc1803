import Adapters
import ArgumentParser
import Checkpoints
import Dispatch

/// What one run owes its caller, whatever the command: results on stdout (unless `--quiet`),
/// warnings, errors and progress on stderr; with `--json`, exactly one document on stdout
/// (`schema`, `ok`, `warnings`, and `error` on failure) and nothing on stderr on success.
enum Session {
  nonisolated(unsafe) private(set) static var json = false
  nonisolated(unsafe) private(set) static var quiet = false
  /// The command's schema, set once by ``begin(schema:options:)``: a view that writes another
  /// passes its own (``document(schema:ok:_:)``, ``under(schema:_:)``).
  nonisolated(unsafe) private(set) static var schema = "fedlora/1"
  private static let lock = DispatchQueue(label: "fedlora.session")
  nonisolated(unsafe) private static var collected: [String] = []

  static func begin(schema: String, options: OutputOptions) {
    self.schema = schema
    json = options.json
    quiet = options.quiet
  }

  /// Whether a progress display may be drawn.
  static var showsProgress: Bool { !json && !quiet }

  /// A warning: into the JSON document with `--json`, else on stderr.
  static func warn(_ message: String) {
    lock.sync { collected.append(message) }
    if !json { Terminal.err("fedlora: warning: \(message.visible)") }
  }

  static var warnings: [String] { lock.sync { collected } }

  /// A line of the result (reports, "wrote ..." lines): stdout, unless `--quiet` or `--json`.
  static func result(_ line: String) {
    if !json && !quiet { Terminal.out(line) }
  }

  /// The JSON document of a run that ended: `schema`, `ok`, `warnings`, then `fields` (a
  /// failed check, such as verify's, gives `ok: false` and its own `error`).
  static func document(schema: String? = nil, ok: Bool = true, _ fields: [(key: String, value: JSON)]) -> String {
    JSON.object([("schema", .string(schema ?? self.schema)), ("ok", .bool(ok)), ("warnings", warningsJSON)] + fields)
      .prettyText
  }

  /// Prints the success document with `--json`.
  static func finish(schema: String? = nil, _ fields: @autoclosure () -> [(key: String, value: JSON)]) {
    if json { Terminal.out(document(schema: schema, fields())) }
  }

  private static var warningsJSON: JSON { .array(warnings.map { .string($0) }) }

  /// Reports a failure as every command does: a line on stderr and, with `--json`, the failure
  /// document on stdout. Returns the exit status to end with: 64 for a usage error (one argv
  /// reveals: a refused option, an output that is an input), 1 for anything else.
  static func failure(_ error: any Error) -> ExitCode {
    if let exit = error as? ExitCode { return exit }
    let (schema, error) = (error as? SchemaFailure).map { ($0.schema, $0.error) } ?? (self.schema, error)
    let (code, message, usage) = describe(error)
    report(code: code, message: message, schema: schema)
    return usage ? .validationFailure : .failure
  }

  /// A failure of a view that writes its own schema: the failure document carries it.
  struct SchemaFailure: Error {
    let schema: String
    let error: any Error
  }

  /// Runs the part of a command whose document has `schema`: a failure in it is reported under
  /// that schema.
  static func under<T>(schema: String, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ExitCode { throw error } catch let error as SchemaFailure {
      throw error
    } catch { throw SchemaFailure(schema: schema, error: error) }
  }

  /// The failure document and stderr line of a usage error that ArgumentParser found (with
  /// `--json` on the command line).
  static func usageFailure(_ message: String, schema: String) {
    json = true
    report(code: "usage", message: message, schema: schema)
  }

  private static func report(code: String, message: String, schema: String) {
    if json {
      Terminal.out(
        JSON.object([
          ("schema", .string(schema)), ("ok", .bool(false)), ("warnings", warningsJSON),
          ("error", .object([("code", .string(code)), ("message", .string(message))])),
        ]).prettyText)
    }
    Terminal.err("fedlora: error: \(code == "usage" ? message : message.visible)")
  }

  private static let usageCodes: Set = [
    "usage", "bad-option", "output-is-input", "duplicate-input",
  ]

  /// What the command line can do about an error the libraries describe in their own terms.
  private static let hints = [
    "different-base-models": "--allow-different-bases merges them anyway",
    "module-missing": "--allow-missing treats it as a zero update",
    "format-cannot-hold": "give --dtype to convert it, or --skip-unsupported to leave it out",
    "format-cannot-hold-any": "give --skip-unsupported to leave it out",
    "missing-alpha": "give --alpha",
    "unknown-row-order": "give --base-config with the base's config.json, or --base",
  ]

  private static func describe(_ error: any Error) -> (code: String, message: String, usage: Bool) {
    if let error = error as? ValidationError { return ("usage", error.message, true) }
    let code = (error as? CheckpointError)?.code ?? (error as? AdapterError)?.code ?? "error"
    let message = String(describing: error) + (hints[code].map { " (\($0))" } ?? "")
    return (code, message, usageCodes.contains(code))
  }
}
