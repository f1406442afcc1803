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
  /// `num_layers`: mlx_lm gives LoRA layers to the model's last `num_layers` layers
  /// (`model.layers[-max(num_layers, 0):]`, so 0 or -1 means all of them).
  let numLayers: Int?
  /// `lora_parameters.keys`: the module paths (within a layer, or from the model's root) that
  /// get LoRA layers; nil: every linear or embedding module in the layers.
  let keys: [String]?

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
    switch json["num_layers"] {
    case nil, .null?: numLayers = nil
    case let value?:
      guard let number = value.intValue, abs(number) <= 1_000_000 else { throw fail("num_layers", "a whole number") }
      numLayers = number
    }
    switch parameters?["keys"] {
    case nil, .null?: keys = nil
    case let value?:
      guard let list = value.arrayValue?.compactMap(\.stringValue), list.count == value.arrayValue?.count else {
        throw fail("lora_parameters.keys", "a list of module paths")
      }
      keys = list
    }
  }

  /// A module name's layer index and its path within the layer (`model.layers.3.self_attn.q_proj`
  /// -> 3, `self_attn.q_proj`); nil for a module outside the layers (`lm_head`).
  static func layer(of name: String) -> (index: Int, key: String)? {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false)
    guard let at = parts.firstIndex(of: "layers"), at + 2 < parts.count, let index = Int(parts[at + 1]), index >= 0
    else { return nil }
    return (index, parts[(at + 2)...].joined(separator: "."))
  }

  /// What mlx_lm's `load_adapters` does with this config and these modules, checked: each must
  /// be a LoRA layer it makes (its layer among the last `num_layers` of the model, its path in
  /// `keys`), or it refuses the file ("not an adapter parameter in the model"). The model's layer
  /// count (`layerCount`, from `--base-config`) places the layers; without it the modules' layers
  /// must at least fit in `num_layers` consecutive ones. Refused by tensor, with what to change.
  func check(_ modules: [(name: String, tensor: String)], layerCount: Int?, modelPath: String?) throws(AdapterError) {
    let placed = modules.map { (module: $0, layer: MLXConfig.layer(of: $0.name)) }
    for (module, layer) in placed {
      if let keys, !keys.contains(layer?.key ?? module.name) {
        throw .badConfig(
          path: path,
          message:
            "tensor '\(module.tensor)': lora_parameters.keys \(JSON.array(keys.map { .string($0) }).compactText) has no '\(layer?.key ?? module.name)', so mlx_lm makes no LoRA layer for it; add it to keys"
        )
      }
      if keys == nil, layer == nil {
        throw .badConfig(
          path: path,
          message:
            "tensor '\(module.tensor)': a module outside the model's layers, which mlx_lm adapts only when lora_parameters.keys names it; add '\(module.name)' to keys"
        )
      }
    }
    let inLayers = placed.compactMap { entry in entry.layer.map { (tensor: entry.module.tensor, index: $0.index) } }
    if let layerCount, let beyond = inLayers.first(where: { $0.index >= layerCount }) {
      throw .badConfig(
        path: modelPath ?? path,
        message:
          "num_hidden_layers is \(layerCount), but tensor '\(beyond.tensor)' of \(path.dropLast("/adapter_config.json".count)) is in layer \(beyond.index): not this adapter's model"
      )
    }
    guard let numLayers, numLayers > 0 else { return }
    if let layerCount {
      if numLayers > layerCount {
        throw .badConfig(
          path: path,
          message:
            "num_layers is \(numLayers), but the model has \(layerCount) layers (num_hidden_layers in \(modelPath ?? "its config")); give num_layers <= \(layerCount), or -1 for all"
        )
      }
      if let below = inLayers.first(where: { $0.index < layerCount - numLayers }) {
        throw .badConfig(
          path: path,
          message:
            "num_layers \(numLayers) gives LoRA layers to layers \(layerCount - numLayers)...\(layerCount - 1) of the model's \(layerCount), but tensor '\(below.tensor)' is in layer \(below.index): mlx_lm would refuse it; give num_layers \(layerCount - below.index) (or -1 for all)"
        )
      }
      return
    }
    guard let low = inLayers.min(by: { $0.index < $1.index }), let high = inLayers.max(by: { $0.index < $1.index }),
      high.index - low.index + 1 > numLayers
    else { return }
    throw .badConfig(
      path: path,
      message:
        "num_layers \(numLayers) gives LoRA layers to the model's last \(numLayers) layers, but tensor '\(low.tensor)' is in layer \(low.index) and '\(high.tensor)' in layer \(high.index): no model's last \(numLayers) layers hold both; give num_layers >= \(high.index - low.index + 1) (the model's layer count minus \(low.index), or -1 for all)"
    )
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
    try config?.check(
      modules.map { ($0.name, $0.origin?.aTensor ?? $0.name) }, layerCount: model?.layerCount, modelPath: model?.path)
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
