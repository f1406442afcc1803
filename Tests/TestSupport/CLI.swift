import Foundation

/// Runs the built `fedlora` executable, as a pipeline would.
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
      stdoutData = out.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    stderrData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
      stderr: String(decoding: stderrData, as: UTF8.self))
  }
}
