import Adapters
import ArgumentParser
import Checkpoints

/// `--base-config`: the head counts that put GGUF LoRA q/k rows in llama.cpp's order.
struct LlamaOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "config.json of the llama base model: GGUF LoRA q/k lora_b rows are then read and written in llama.cpp's row order (as its converter writes them).",
      discussion: "Without it, GGUF adapters are taken and written in Hugging Face row order."), completion: .file())
  var baseConfig: String?

  func heads() throws -> LlamaGGUF.Heads? { try baseConfig.map { try LlamaGGUF.heads(configAt: $0) } }
}

extension LlamaGGUF.Export {
  /// Says what the llama.cpp GGUF holds beyond the tensors (a result line), and what it lacks (warnings).
  func report() {
    if !dropped.isEmpty {
      Session.warn("\(dropped.count) tensors llama.cpp does not use were left out (first: \(dropped[0]))")
    }
    switch vocabulary {
    case let .vocabulary(vocabulary):
      Session.result("llama.cpp metadata: hyper-parameters from config.json, vocabulary from \(vocabulary.summary)")
    case let .unavailable(reason):
      Session.warn("no vocabulary written (\(reason)): llama.cpp needs one to run the model")
    }
  }
}
