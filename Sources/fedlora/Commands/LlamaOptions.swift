import Adapters
import ArgumentParser
import Checkpoints

/// `--base-config`: what adapters need of their base model: the head counts that put GGUF LoRA
/// (and torchtune) q/k rows in llama.cpp's order, a diffusers UNet's `layers_per_block` for
/// kohya SDXL sgm names, a model's `num_hidden_layers` for MLX-LM's `num_layers`.
struct LlamaOptions: ParsableArguments {
  @Option(
    help: ArgumentHelp(
      "config.json of the base model: a llama's puts GGUF LoRA q/k lora_b rows in llama.cpp's row order (as its converter writes them) and gives an MLX-LM adapter's layer count; a diffusers UNet's (unet/config.json) maps kohya SDXL sgm names.",
      discussion: "Without it, GGUF adapters are taken and written in Hugging Face row order."), completion: .file())
  var baseConfig: String?

  /// The llama head counts of --base-config; nil without it, or for a diffusers UNet's config.
  func heads() throws -> LlamaGGUF.Heads? {
    guard let baseConfig else { return nil }
    if try model()?.layersPerBlock != nil { return nil }
    return try LlamaGGUF.heads(configAt: baseConfig)
  }

  /// What --base-config says beyond head counts (a UNet's `layers_per_block`, `num_hidden_layers`).
  func model() throws -> BaseModelConfig? { try baseConfig.map { try BaseModelConfig.read($0) } }

  /// Whether these adapters (or an output in `format`) use --base-config: GGUF, torchtune,
  /// kohya and MLX-LM clients, a GGUF or MLX-LM output.
  static func uses(_ adapters: [Adapter], output format: AdapterFormat?) -> Bool {
    format == .gguf || format == .mlx
      || adapters.contains {
        $0.format == .gguf || [.torchtune, .kohya, .mlx].contains($0.sourceFormat)
      }
  }

  /// The usage error of a --base-config no input or output uses.
  static let unused =
    "--base-config gives the q/k row order of GGUF LoRA and torchtune files, the UNet layout of kohya SDXL files and the layer count of MLX-LM adapters"
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
