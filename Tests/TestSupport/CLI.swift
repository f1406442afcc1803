import Checkpoints
import Foundation

/// Runs the built `fedlora` executable, as a pipeline would. Every run with `--json` that ends
/// with 0, 1 or 64 is held to the contract: stdout must be one JSON document that validates
/// against the schema in docs/schemas/ its `schema` field names, or `run` throws.
public enum CLI {
  /// What a run left: its exit status and both streams, whole.
  public struct Result: Sendable {
    /// The exit status, or the signal's number when a signal ended the run.
    public let status: Int32
    /// Standard output.
    public let stdout: String
    /// Standard error.
    public let stderr: String
  }

  /// The executable next to the test bundle (SwiftPM builds both into the same folder).
  public static let executable: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    return bundle.appendingPathComponent("fedlora").path
  }()

  /// Everything `handle` gives until its end, retrying reads that a signal interrupts
  /// (Foundation's `readDataToEndOfFile` traps on EINTR, which the signal tests provoke).
  static func readAll(_ handle: FileHandle) -> Data {
    var data = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
      if count > 0 {
        data.append(contentsOf: buffer[..<count])
      } else if count < 0, errno == EINTR {
        continue
      } else {
        return data
      }
    }
  }

  /// Runs fedlora (or `program`) with `arguments`, in `directory` when given; `signal` is sent
  /// `after` seconds, as a user's Ctrl-C or a scheduler's kill would be.
  public static func run(
    _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
    signal: (number: Int32, after: Double)? = nil, program: String? = nil
  ) throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program ?? executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    if let signal {
      let pid = process.processIdentifier
      DispatchQueue.global().asyncAfter(deadline: .now() + signal.after) { kill(pid, signal.number) }
    }
    // Read both pipes while the process runs so neither fills up.
    let group = DispatchGroup()
    nonisolated(unsafe) var stdoutData = Data()
    nonisolated(unsafe) var stderrData = Data()
    group.enter()
    DispatchQueue.global().async {
      stdoutData = readAll(out.fileHandleForReading)
      group.leave()
    }
    stderrData = readAll(err.fileHandleForReading)
    group.wait()
    process.waitUntilExit()
    let result = Result(
      status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
      stderr: String(decoding: stderrData, as: UTF8.self))
    // 130 and 143 (signals) may leave no document; anything else under --json must be one.
    if arguments.contains("--json"), [0, 1, 64].contains(result.status) {
      try checkDocument(result, arguments: arguments)
    }
    return result
  }

  /// A `--json` run that breaks the contract: stdout not one JSON document, an unknown schema,
  /// a document its schema rejects, or a success that printed on stderr.
  public struct ContractViolation: Error, Sendable, CustomStringConvertible {
    /// The command, what is wrong, and the stdout it printed.
    public let description: String
  }

  /// The package's root folder (this file is Tests/TestSupport/CLI.swift).
  public static let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

  /// The schemas of docs/schemas/ by the document name they describe (`fedlora.merge/1` is
  /// `fedlora.merge.1.schema.json`), read and compiled once per test process.
  public static let schemas: Swift.Result<[String: JSONSchema], ContractViolation> = {
    let folder = packageRoot + "/docs/schemas"
    let suffix = ".schema.json"
    do {
      var schemas: [String: JSONSchema] = [:]
      for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file.hasSuffix(suffix) {
        let stem = file.dropLast(suffix.count)
        guard let dot = stem.lastIndex(of: ".") else { continue }
        schemas[String(stem[..<dot]) + "/" + String(stem[stem.index(after: dot)...])] = try JSONSchema(
          contentsOf: folder + "/" + file)
      }
      return .success(schemas)
    } catch {
      return .failure(ContractViolation(description: "cannot load the schemas of \(folder): \(error)"))
    }
  }()

  /// Validates a `--json` run's stdout against its schema (and a success's stderr is empty);
  /// throws a ``ContractViolation``.
  public static func checkDocument(_ result: Result, arguments: [String]) throws {
    func violation(_ what: String) -> ContractViolation {
      ContractViolation(
        description:
          "fedlora \(arguments.joined(separator: " ")) (exit \(result.status)) breaks the JSON contract: \(what)\n"
          + "stdout: \(result.stdout.prefix(4000))")
    }
    let document: JSON
    do { document = try JSON.parse(result.stdout, path: "stdout") } catch {
      throw violation("stdout is not one JSON document (\(error))")
    }
    guard let name = document["schema"]?.stringValue else { throw violation("no string `schema` field") }
    guard let schema = try schemas.get()[name] else {
      throw violation("no schema for \(name) in docs/schemas/")
    }
    if result.status == 0, !result.stderr.isEmpty {
      throw violation("a success printed on stderr (warnings belong in the document): \(result.stderr.prefix(2000))")
    }
    let errors = schema.validate(document)
    if !errors.isEmpty {
      throw violation("it does not validate against \(name):\n  " + errors.joined(separator: "\n  "))
    }
  }
}
