import Adapters
import ArgumentParser

/// `--base-config`: the head counts that put GGUF LoRA q/k rows in llama.cpp's order.
struct LlamaOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "config.json of the llama base model: GGUF LoRA q/k lora_b rows are then read and written in llama.cpp's row order (as its converter writes them).",
    discussion: "Without it, GGUF adapters are taken and written in Hugging Face row order."), completion: .file())
  var baseConfig: String?

  func heads() throws -> LlamaGGUF.Heads? { try baseConfig.map { try LlamaGGUF.heads(configAt: $0) } }
}
