import Checkpoints

/// MLX-LM's `adapter_config.json`: `fine_tune_type`, `lora_parameters` `{rank, scale, dropout}`,
/// `num_layers`, `keys`. Told from a PEFT config by `lora_parameters` / `fine_tune_type`.
struct MLXConfig {
  let path: String
  /// `fine_tune_type` (`lora` when absent, as MLX-LM defaults it).
  let fineTuneType: String
  /// `lora_parameters.rank`.
  let rank: Int?
  /// `lora_parameters.scale`: the absolute factor of `x A B` (PEFT's alpha is `scale * rank`).
  let scale: Double?

  /// The MLX-LM config beside a checkpoint; nil when there is none or the config is PEFT's.
  static func beside(_ checkpoint: Checkpoint) throws(AdapterError) -> MLXConfig? {
    guard checkpoint.metadata.first(where: { $0.key == AdapterConfig.metadataKey }) == nil else { return nil }
    let path = checkpoint.folder + "/adapter_config.json"
    guard Checkpoint.exists(path) else { return nil }
    let bytes = try AdapterError.wrap { () throws(CheckpointError) in
      try ModelFolder.contents(of: "adapter_config.json", in: checkpoint.folder)
    }
    // A config that is not JSON is left to the PEFT reader's error.
    guard let json = try? JSON.parse(bytes, path: path), json.objectValue != nil,
      json["lora_parameters"] != nil || json["fine_tune_type"] != nil, json["peft_type"] == nil
    else { return nil }
    return try MLXConfig(json: json, path: path)
  }

  init(json: JSON, path: String) throws(AdapterError) {
    self.path = path
    func fail(_ key: String, _ expected: String) -> AdapterError {
      .badConfig(path: path, message: "'\(key)' must be \(expected) (an MLX-LM config)")
    }
    let type = json["fine_tune_type"].flatMap { $0 == .null ? nil : $0 }
    guard let fineTuneType = type.map({ $0.stringValue }) ?? "lora" else { throw fail("fine_tune_type", "a string") }
    self.fineTuneType = fineTuneType
    let parameters = json["lora_parameters"].flatMap { $0 == .null ? nil : $0 }
    guard parameters == nil || parameters?.objectValue != nil else { throw fail("lora_parameters", "an object") }
    if let rank = parameters?["rank"] {
      guard let value = rank.intValue, value > 0 else { throw fail("lora_parameters.rank", "a positive integer") }
      self.rank = value
    } else {
      rank = nil
    }
    // MLX-LM refuses a config with 'alpha' and no 'scale' (its LoRA scale is absolute).
    if parameters?["scale"] == nil, parameters?["alpha"] != nil {
      throw fail("lora_parameters.scale", "present (MLX-LM's scale is absolute; it has no 'alpha')")
    }
    if let scale = parameters?["scale"] {
      guard let value = scale.doubleValue, value.isFinite else {
        throw fail("lora_parameters.scale", "a finite number")
      }
      self.scale = value
    } else {
      scale = nil
    }
  }
}

/// MLX-LM's adapters: `<module>.lora_a` `[in, r]` and `<module>.lora_b` `[r, out]`, transposed
/// against PEFT (the layer computes `y + scale * (x @ lora_a) @ lora_b`), so `A = lora_a^T` and
/// `B = lora_b^T`; the scale is absolute. Module names are the Hugging Face ones
/// (`model.layers.0.self_attn.q_proj`).
enum MLXReader {
  static func load(
    _ checkpoint: Checkpoint, config: MLXConfig?, alpha: Double?, model: BaseModelConfig?, lenient: Bool
  ) throws(AdapterError) -> Adapter {
    let path = checkpoint.path
    if let config, config.fineTuneType != "lora" {
      throw .unsupportedVariant(
        path: config.path, tensor: "fine_tune_type",
        variant:
          "MLX-LM fine_tune_type '\(config.fineTuneType)' (DoRA's magnitude m, or full weights) is not a plain LoRA")
    }
    var pairs: [String: (a: Tensor?, b: Tensor?)] = [:]
    for tensor in checkpoint.tensors {
      if tensor.name.hasSuffix(".lora_a") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].a = tensor
      } else if tensor.name.hasSuffix(".lora_b") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].b = tensor
      } else if tensor.name.hasSuffix(".m") {
        throw .unsupportedVariant(path: path, tensor: tensor.name, variant: "an MLX-LM DoRA magnitude (m)")
      } else {
        throw .unsupportedVariant(
          path: path, tensor: tensor.name, variant: "not an MLX-LM LoRA tensor (lora_a / lora_b)")
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (stem, pair) in pairs.sorted(by: { $0.key < $1.key }) {
      do {
        modules.append(try module(stem, pair, config: config, alpha: alpha, path: path))
      } catch {
        guard lenient, error.module != nil else { throw error }
        problems.append(error)
      }
    }
    var adapter = Adapter(
      path: path, format: .safetensors, config: nil, checkpoint: checkpoint, modules: modules, fullTensors: [])
    adapter.readFormat = .mlx
    adapter.ownScale = config?.scale != nil
    adapter.problems = problems
    return adapter
  }

  private static func module(
    _ stem: String, _ pair: (a: Tensor?, b: Tensor?), config: MLXConfig?, alpha: Double?, path: String
  ) throws(AdapterError) -> LoRAModule {
    guard let a = pair.a else { throw .unpairedModule(path: path, module: stem, missing: stem + ".lora_a") }
    guard let b = pair.b else { throw .unpairedModule(path: path, module: stem, missing: stem + ".lora_b") }
    func fail(_ tensor: Tensor, _ message: String) -> AdapterError {
      .badFactor(path: path, module: stem, tensor: tensor.name, message: message)
    }
    for tensor in [a, b] where tensor.shape.count == 3 {
      throw .unsupportedVariant(
        path: path, tensor: tensor.name,
        variant: "a 3-D factor \(tensor.shape): an MLX-LM MoE switch layer (one LoRA per expert)")
    }
    guard a.shape.count == 2, b.shape.count == 2, (a.shape + b.shape).allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) })
    else {
      throw fail(
        a.shape.count == 2 ? b : a, "MLX-LM stores lora_a [in, r] and lora_b [r, out]; found \(a.shape) and \(b.shape)")
    }
    let rank = a.shape[1]
    if let claimed = config?.rank {
      guard rank == claimed else {
        throw fail(a, "lora_a is [in, r] = \(a.shape), but lora_parameters.rank is \(claimed)")
      }
      guard b.shape[0] == claimed else {
        throw fail(b, "lora_b is [r, out] = \(b.shape), but lora_parameters.rank is \(claimed)")
      }
    }
    guard b.shape[0] == rank else { throw fail(b, "lora_b is [r, out] = \(b.shape), lora_a [in, r] = \(a.shape)") }
    let scale: Double
    let moduleAlpha: Double
    if let given = config?.scale {
      scale = given
      moduleAlpha = given * Double(rank)
    } else if let alpha {
      moduleAlpha = alpha
      scale = alpha / Double(rank)
    } else {
      throw .formatNeedsAlpha(
        path: path, format: "MLX-LM",
        reason: "without its adapter_config.json (lora_parameters.scale) its scale is unknown")
    }
    // A = lora_a^T [r, in], B = lora_b^T [out, r]: copied bit for bit (small factors).
    let (ta, tb) = try AdapterError.wrap { () throws(CheckpointError) in
      (try a.transposedCopy(), try b.transposedCopy())
    }
    var module = LoRAModule(
      name: stem, kind: stem.hasSuffix("embed_tokens") ? .embedding : .linear, a: ta, b: tb, rank: rank,
      alpha: moduleAlpha, scale: scale, fanInFanOut: false, bias: nil, magnitude: nil)
    module.origin = ModuleOrigin(
      format: .mlx, stem: stem, aTensor: a.name, bTensor: b.name, aShape: a.shape, bShape: b.shape, transposed: true)
    return module
  }
}
