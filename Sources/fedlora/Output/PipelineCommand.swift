import ArgumentParser
import Checkpoints

/// A command that keeps the pipeline contract: its `execute` runs inside a ``Session``.
protocol PipelineCommand: ParsableCommand {
  /// The schema of the command's JSON document (a failure before the command knows more
  /// uses it too).
  static var schema: String { get }
  var outputOptions: OutputOptions { get }
  func execute() throws
}

extension PipelineCommand {
  func run() throws {
    Session.begin(schema: Self.schema, options: outputOptions)
    do { try execute() } catch { throw Session.failure(error) }
  }
}
