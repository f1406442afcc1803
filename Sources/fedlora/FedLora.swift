import ArgumentParser

@main
struct FedLora: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "fedlora",
    abstract: "Aggregate, merge, inspect and convert LoRA adapters from federated fine-tuning.",
    discussion: """
      fedlora reads safetensors (single or sharded), GGUF and PEFT adapter folders. Results go to \
      standard output, diagnostics and progress to standard error. Exit status: 0 success, \
      1 failure (invalid input, a check that failed), 64 usage error.
      """,
    version: version,
    subcommands: [MergeCommand.self, InspectCommand.self, VerifyCommand.self, ConvertCommand.self]
  )
}
