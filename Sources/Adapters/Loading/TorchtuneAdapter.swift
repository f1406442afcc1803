import Checkpoints

/// torchtune's native adapter checkpoints (`adapter_model.pt`, older `adapter_N.pt`):
/// `layers.N.attn.q_proj.lora_a.weight` `[r, in]` and `.lora_b.weight` `[out, r]` (PEFT's
/// orientation) under torchtune's module names, mapped to Hugging Face's as torchtune's
/// `convert_weights._FROM_HF` does. torchtune's llama attention keeps q/k rows in Meta's
/// per-head (interleaved rotary) order, the order llama.cpp also uses: its PEFT export permutes
/// q/k `lora_b` rows into Hugging Face order (`_permute_lora_matrix`), and this reader does
/// the same permutation with the base model's head counts, given or from a `config.json` beside
/// the file, else refused when the adapter is used. The alpha lives in the training recipe:
/// from `adapter_config.json` beside the file (torchtune's PEFT export writes it), else `--alpha`.
enum TorchtuneReader {
  /// torchtune module path -> Hugging Face (per layer), from `_FROM_HF`.
  private static let layerNames: [(tune: String, hf: String)] = [
    ("attn.q_proj", "self_attn.q_proj"), ("attn.k_proj", "self_attn.k_proj"), ("attn.v_proj", "self_attn.v_proj"),
    ("attn.output_proj", "self_attn.o_proj"), ("mlp.w1", "mlp.gate_proj"), ("mlp.w2", "mlp.down_proj"),
    ("mlp.w3", "mlp.up_proj"),
  ]

  /// The Hugging Face module of a torchtune module (`layers.3.mlp.w1` -> `model.layers.3.mlp.gate_proj`);
  /// nil for a name `_FROM_HF` does not map.
  static func hfName(_ tune: String) -> String? {
    if tune == "output" { return "lm_head" }
    if tune == "tok_embeddings" { return "model.embed_tokens" }
    let parts = tune.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0] == "layers", let layer = Int(parts[1]), layer >= 0, String(layer) == parts[1],
      let mapped = layerNames.first(where: { $0.tune == parts[2] })
    else { return nil }
    return "model.layers.\(layer).\(mapped.hf)"
  }

  /// The adapter `checkpoint` holds, with Hugging Face module names; with `lenient`, modules
  /// that cannot be read are listed in its `problems` instead of failing the load.
  static func load(
    _ checkpoint: Checkpoint, config: AdapterConfig?, alpha: Double?, heads: LlamaGGUF.Heads?, lenient: Bool
  ) throws(AdapterError) -> Adapter {
    let path = checkpoint.path
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (stem, pair) in try pairs(in: checkpoint).sorted(by: { $0.key < $1.key }) {
      guard let name = hfName(stem) else {
        throw .unsupportedVariant(
          path: path, tensor: (pair.a ?? pair.b)?.name ?? stem,
          variant:
            "torchtune module '\(stem)' has no Hugging Face name (convert_weights._FROM_HF maps layers.N.attn.{q,k,v,output}_proj, mlp.w1/w2/w3, output)"
        )
      }
      do throws(AdapterError) {
        modules.append(try module(name, stem: stem, pair: pair, path: path, config: config, alpha: alpha))
      } catch {
        guard lenient, error.module != nil else { throw error }
        problems.append(error)
      }
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    modules.sort { $0.name < $1.name }
    var adapter = Adapter(
      path: path, format: config == nil ? .safetensors : .peft, config: config, checkpoint: checkpoint,
      modules: modules, fullTensors: [])
    adapter.readFormat = .torchtune
    adapter.problems = problems
    return try inHuggingFaceRowOrder(adapter, heads: heads)
  }

  /// Each module stem's `lora_a` / `lora_b` weights; any other tensor (a DoRA magnitude
  /// included) is refused by name.
  private static func pairs(in checkpoint: Checkpoint) throws(AdapterError) -> [String: (a: Tensor?, b: Tensor?)] {
    var pairs: [String: (a: Tensor?, b: Tensor?)] = [:]
    for tensor in checkpoint.tensors {
      let name = tensor.name
      if name.hasSuffix(".lora_a.weight") {
        pairs[String(name.dropLast(14)), default: (nil, nil)].a = tensor
      } else if name.hasSuffix(".lora_b.weight") {
        pairs[String(name.dropLast(14)), default: (nil, nil)].b = tensor
      } else if name.hasSuffix(".magnitude") {
        throw .unsupportedVariant(path: checkpoint.path, tensor: name, variant: "a torchtune DoRA magnitude")
      } else {
        throw .unsupportedVariant(
          path: checkpoint.path, tensor: name, variant: "not a torchtune LoRA tensor (lora_a / lora_b)")
      }
    }
    return pairs
  }

  /// Module `name` (torchtune's `stem`) from its pair: 2-D factors, scaled by the config's alpha
  /// (rsLoRA too), else by `alpha`; refused without either.
  private static func module(
    _ name: String, stem: String, pair: (a: Tensor?, b: Tensor?), path: String, config: AdapterConfig?,
    alpha: Double?
  ) throws(AdapterError) -> LoRAModule {
    guard let down = pair.a else {
      throw AdapterError.unpairedModule(path: path, module: name, missing: stem + ".lora_a.weight")
    }
    guard let up = pair.b else {
      throw AdapterError.unpairedModule(path: path, module: name, missing: stem + ".lora_b.weight")
    }
    let (a, b, kernel) = try FactorPair.views(path: path, module: name, down: down, up: up)
    guard kernel == nil else {
      throw AdapterError.badFactor(
        path: path, module: name, tensor: down.name, message: "torchtune LoRA factors are 2-D")
    }
    let rank = a.shape[0]
    let (moduleAlpha, scale): (Double, Double)
    if let config {
      (moduleAlpha, scale) = config.alphaAndScale(for: name, rank: rank)
    } else if let alpha {
      (moduleAlpha, scale) = (alpha, alpha / Double(rank))
    } else {
      throw AdapterError.formatNeedsAlpha(
        path: path, format: "torchtune",
        reason:
          "its lora_alpha lives in the training recipe, not in the file (nor is torchtune's adapter_config.json beside it)"
      )
    }
    var module = LoRAModule(
      name: name, kind: name.hasSuffix("embed_tokens") ? .embedding : .linear, a: a, b: b, rank: rank,
      alpha: moduleAlpha, scale: scale, fanInFanOut: false, bias: nil, magnitude: nil)
    module.origin = ModuleOrigin(
      format: .torchtune, stem: stem, aTensor: down.name, bTensor: up.name, aShape: down.shape, bShape: up.shape)
    return module
  }

  /// q/k rows: torchtune's per-head order, read back with the head counts given or found beside
  /// the file; otherwise resolved later (QKRowOrder.resolve) or refused, never guessed.
  private static func inHuggingFaceRowOrder(_ adapter: Adapter, heads: LlamaGGUF.Heads?) throws(AdapterError)
    -> Adapter
  {
    guard adapter.modules.contains(where: { LlamaGGUF.isQueryOrKey($0.name) }) else { return adapter }
    let config = adapter.checkpoint.folder + "/config.json"
    let found: LlamaGGUF.Heads? =
      if let heads { heads } else if Checkpoint.isFile(config) {
        try AdapterError.wrap { () throws(CheckpointError) in try LlamaGGUF.heads(configAt: config) }
      } else { nil }
    guard let found else {
      var adapter = adapter
      adapter.pendingRowOrder = true
      return adapter
    }
    return adapter.withRowOrder(found)
  }
}
