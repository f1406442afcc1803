import Adapters
import ArgumentParser

@main
struct FedLora: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "fedlora",
    abstract: "Aggregate, merge, inspect and convert LoRA adapters from federated fine-tuning.",
    discussion: """
      fedlora reads safetensors (single or sharded), GGUF and PEFT adapter folders. Results go to \
      standard output, warnings, errors and progress to standard error; every command takes \
      --json (one document on standard output) and --quiet. Outputs are staged as hidden \
      temporaries and renamed into place, replacing only the files that make up the output. \
      Exit status: 0 success, 1 failure (invalid input, a check that failed), 64 usage error, \
      130 and 143 when interrupted by SIGINT or SIGTERM (temporaries removed).
      """,
    version: version,
    subcommands: [MergeCommand.self, InspectCommand.self, VerifyCommand.self, ConvertCommand.self]
  )

  /// `fedlora --version --verbose`: the version, then which BLAS/LAPACK a computation runs on
  /// (loaded to find out), one `key: value` per line; exit 1 naming what is missing when they
  /// cannot be loaded. Plain `--version` stays ArgumentParser's (the version alone).
  static func versionVerbose() -> ExitCode {
    Terminal.out("version: \(version)")
    do {
      let libraries = try LinearAlgebra.libraries()
      let prefix = libraries.symbolPrefix.isEmpty ? "" : ", symbols prefixed \(libraries.symbolPrefix)"
      Terminal.out("blas: \(libraries.blas) (\(libraries.origin)\(prefix))")
      Terminal.out("lapacke: \(libraries.lapacke)")
      Terminal.out("openblas: \(libraries.config.isEmpty ? "unknown build" : libraries.config)")
      let coretype = LinearAlgebra.chosenKernels.map {
        "OPENBLAS_CORETYPE=\($0), chosen by fedlora from the CPU's features"
      }
      let named = libraries.coretypeVariable.map { "OPENBLAS_CORETYPE=\($0) from the environment" }
      Terminal.out("kernels: \(libraries.kernels) (\(coretype ?? named ?? "OpenBLAS's own detection"))")
      return .success
    } catch {
      Terminal.err("fedlora: error: \(error.description)")
      return .failure
    }
  }

  /// ArgumentParser's main, with usage errors given as the JSON failure document under `--json`.
  static func main() {
    let arguments = Array(CommandLine.arguments.dropFirst())
    // Before any thread, and after the arguments are read (setenv moves the environment).
    LinearAlgebra.chooseKernels()
    if arguments.count == 2, Set(arguments) == ["--version", "--verbose"] { Self.exit(withError: versionVerbose()) }
    Interrupts.install()
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
    } catch {
      if let exit = error as? ExitCode { Self.exit(withError: exit) }
      if exitCode(for: error) == .validationFailure, arguments.contains("--json") {
        let name = arguments.first { !$0.hasPrefix("-") } ?? ""
        let command = configuration.subcommands.first { $0.configuration.commandName == name }
        Session.usageFailure(message(for: error), schema: (command as? any PipelineCommand.Type)?.schema ?? "fedlora/1")
        Self.exit(withError: ExitCode.validationFailure)
      }
      // One form for every error: "fedlora: error: ..." (ArgumentParser's own says "Error: ...").
      let code = exitCode(for: error)
      let text = fullMessage(for: error)
      if code != .success, text.hasPrefix("Error: ") {
        Terminal.errRaw("fedlora: error: " + text.dropFirst("Error: ".count) + (text.hasSuffix("\n") ? "" : "\n"))
        Self.exit(withError: ExitCode(code.rawValue))
      }
      Self.exit(withError: error)
    }
  }
}
