import Checkpoints

/// diffusers' LoRA files (`pytorch_lora_weights.safetensors`): modules under `unet.`,
/// `transformer.`, `text_encoder.`, `text_encoder_2.` (`text_encoder_3.`), named PEFT-style
/// (`.lora_A.weight` / `.lora_B.weight`) or in the older `.lora.down.weight` /
/// `.lora_linear_layer.down.weight` / attention-processor (`.processor.to_q_lora.down.weight`)
/// forms, mapped to PEFT's module names as diffusers maps them. Alphas: the
/// `lora_adapter_metadata` JSON of the safetensors metadata (a LoraConfig per component,
/// keys prefixed `unet.`...), else `NAME.alpha` tensors, else scale 1, as diffusers loads them.
enum DiffusersReader {
  static let components = ["unet.", "transformer.", "text_encoder.", "text_encoder_2.", "text_encoder_3."]
  static let metadataKey = "lora_adapter_metadata"

  /// Whether a PEFT-style checkpoint without a config is diffusers': its metadata carries
  /// `lora_adapter_metadata`, or every LoRA key lies under a diffusers component prefix.
  static func isDiffusers(_ checkpoint: Checkpoint) -> Bool {
    if checkpoint.metadata.contains(where: { $0.key == metadataKey }) { return true }
    var any = false
    for tensor in checkpoint.tensors where ModuleName.fromPEFT(tensor.name) != nil {
      guard components.contains(where: tensor.name.hasPrefix) else { return false }
      any = true
    }
    return any
  }

  /// `(module, part)` of a diffusers key: part `A`, `B`, `alpha`, `bias` or `magnitude`; nil for other keys.
  static func parse(_ name: String) -> (module: String, part: String)? {
    for (suffix, part) in [
      (".lora_A.weight", "A"), (".lora_B.weight", "B"), (".lora_A.default.weight", "A"),
      (".lora_B.default.weight", "B"),
      (".lora_B.bias", "bias"), (".lora_magnitude_vector", "magnitude"), (".lora_magnitude_vector.weight", "magnitude"),
      (".lora.down.weight", "A"), (".lora.up.weight", "B"), (".lora_linear_layer.down.weight", "A"),
      (".lora_linear_layer.up.weight", "B"), (".alpha", "alpha"),
    ] where name.hasSuffix(suffix) && name.count > suffix.count {
      return (String(name.dropLast(suffix.count)), part)
    }
    // Attention processors: `X.processor.to_q_lora.down.weight` (UNet: X.to_q; text encoder: X.q_proj).
    let textEncoder = name.hasPrefix("text_encoder")
    for (old, unetName, teName) in [
      ("to_q_lora", "to_q", "q_proj"), ("to_k_lora", "to_k", "k_proj"), ("to_v_lora", "to_v", "v_proj"),
      ("to_out_lora", "to_out.0", "out_proj"),
    ] {
      for (tail, part) in [(".down.weight", "A"), (".up.weight", "B")] where name.hasSuffix("." + old + tail) {
        var base = String(name.dropLast(old.count + tail.count + 1))
        if base.hasSuffix(".processor") { base = String(base.dropLast(".processor".count)) }
        return (base + "." + (textEncoder ? teName : unetName), part)
      }
    }
    return nil
  }

  static func load(_ checkpoint: Checkpoint, lenient: Bool) throws(AdapterError) -> Adapter {
    let path = checkpoint.path
    var parts: [String: [String: Tensor]] = [:]
    for tensor in checkpoint.tensors {
      guard let (module, part) = parse(tensor.name) else {
        throw .unsupportedVariant(
          path: path, tensor: tensor.name, variant: "not a diffusers LoRA tensor (lora_A/lora_B, lora.down/up, alpha)")
      }
      if part == "magnitude" {
        throw .unsupportedVariant(path: path, tensor: tensor.name, variant: "DoRA (lora_magnitude_vector)")
      }
      parts[module, default: [:]][part] = tensor
    }
    // lora_adapter_metadata: {"unet.r": 4, "unet.lora_alpha": 8, "text_encoder.r": ...}.
    var configs: [String: AdapterConfig] = [:]
    if let raw = checkpoint.metadata.first(where: { $0.key == metadataKey })?.value {
      let where_ = path + " (" + metadataKey + ")"
      let json = try AdapterError.wrap { () throws(CheckpointError) in try JSON.parse(Array(raw.utf8), path: where_) }
      guard let entries = json.objectValue else { throw .badConfig(path: where_, message: "not a JSON object") }
      for component in components {
        let own = entries.filter { $0.key.hasPrefix(component) }.map {
          (String($0.key.dropFirst(component.count)), $0.value)
        }
        guard !own.isEmpty else { continue }
        configs[component] = try AdapterConfig(json: .object(own), path: where_ + " " + String(component.dropLast()))
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (name, found) in parts.sorted(by: { $0.key < $1.key }) where found["A"] != nil || found["B"] != nil {
      do throws(AdapterError) {
        guard let down = found["A"] else {
          throw AdapterError.unpairedModule(path: path, module: name, missing: "lora_A (lora.down)")
        }
        guard let up = found["B"] else {
          throw AdapterError.unpairedModule(path: path, module: name, missing: "lora_B (lora.up) of \(down.name)")
        }
        let (a, b, kernel) = try FactorPair.views(path: path, module: name, down: down, up: up)
        let rank = a.shape[0]
        let (alpha, scale): (Double, Double)
        if let component = components.first(where: name.hasPrefix), let config = configs[component] {
          (alpha, scale) = config.alphaAndScale(for: String(name.dropFirst(component.count)), rank: rank)
        } else {
          alpha = try FactorPair.alpha(found["alpha"], rank: rank, path: path)
          scale = alpha / Double(rank)
        }
        var module = LoRAModule(
          name: name, kind: .linear, a: a, b: b, rank: rank, alpha: alpha, scale: scale, fanInFanOut: false,
          bias: found["bias"], magnitude: nil)
        module.origin = ModuleOrigin(
          format: .diffusers, stem: name, aTensor: down.name, bTensor: up.name, alphaTensor: found["alpha"]?.name,
          aShape: down.shape, bShape: up.shape, kernel: kernel)
        modules.append(module)
      } catch {
        guard lenient, error.module != nil else { throw error }
        problems.append(error)
      }
    }
    if let stray = parts.first(where: { $0.value["A"] == nil && $0.value["B"] == nil }) {
      throw .unsupportedVariant(
        path: path, tensor: stray.value.values.first?.name ?? stray.key,
        variant: "an alpha or bias without lora factors")
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    var adapter = Adapter(
      path: path, format: .safetensors, config: nil, checkpoint: checkpoint, modules: modules, fullTensors: [])
    adapter.readFormat = .diffusers
    adapter.ownScale = true
    adapter.problems = problems
    return adapter
  }
}
