import Checkpoints

/// kohya-ss LoRA files (sd-scripts, ComfyUI, AUTOMATIC1111): `NAME.lora_down.weight`,
/// `NAME.lora_up.weight` and the scalar `NAME.alpha`, NAME being the module path with `.`
/// replaced by `_` under `lora_unet_` / `lora_te_` / `lora_te1_` / `lora_te2_`. The scale is
/// `alpha / rank` (alpha missing or 0: rank). Conv LoRA (LoCon) factors
/// `[r, in, kh, kw]` / `[out, r, 1, 1]` are read as their exact matrix views. What is not plain
/// LoRA (LoHa, LoKr, DoRA, Tucker `lora_mid`, LyCORIS full/norm diffs) is refused by name.
enum KohyaReader {
  /// Tensor suffixes of the LyCORIS variants that are not `W + s B A`.
  private static let variants: [(suffix: String, what: String)] = [
    ("hada_", "LoHa (hada_*)"), ("lokr_", "LoKr (lokr_*)"), ("dora_scale", "DoRA (dora_scale)"),
    ("lora_mid", "LoCon with a Tucker core (lora_mid)"), ("diff_b", "a bias difference (diff_b)"),
    ("diff", "a full-weight difference (diff)"), ("w_norm", "a norm layer (w_norm)"),
    ("b_norm", "a norm layer (b_norm)"),
    ("on_input", "IA3 (on_input)"), ("weight", "IA3 or a full weight"),
  ]

  static func load(_ checkpoint: Checkpoint, lenient: Bool) throws(AdapterError) -> Adapter {
    let path = checkpoint.path
    var parts: [String: (down: Tensor?, up: Tensor?, alpha: Tensor?)] = [:]
    for tensor in checkpoint.tensors {
      let name = tensor.name
      guard let dot = name.firstIndex(of: "."), KeyFamily.kohyaPrefixes.contains(where: name.hasPrefix) else {
        throw .unsupportedVariant(
          path: path, tensor: name,
          variant: "not a kohya LoRA key (lora_unet_* / lora_te*_* NAME.lora_down/lora_up/alpha)")
      }
      let stem = String(name[..<dot])
      switch name[name.index(after: dot)...] {
      case "lora_down.weight": parts[stem, default: (nil, nil, nil)].down = tensor
      case "lora_up.weight": parts[stem, default: (nil, nil, nil)].up = tensor
      case "alpha": parts[stem, default: (nil, nil, nil)].alpha = tensor
      case let suffix:
        let what = variants.first { suffix.hasPrefix($0.suffix) }?.what ?? "an unknown kohya tensor"
        throw .unsupportedVariant(path: path, tensor: name, variant: what + ", not a plain LoRA")
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (stem, found) in parts.sorted(by: { $0.key < $1.key }) {
      let name = KohyaNames.diffusersName(stem) ?? stem
      do throws(AdapterError) {
        guard let down = found.down else {
          throw AdapterError.unpairedModule(path: path, module: name, missing: stem + ".lora_down.weight")
        }
        guard let up = found.up else {
          throw AdapterError.unpairedModule(path: path, module: name, missing: stem + ".lora_up.weight")
        }
        let (a, b, kernel) = try FactorPair.views(path: path, module: name, down: down, up: up)
        let rank = a.shape[0]
        let alpha = try FactorPair.alpha(found.alpha, rank: rank, path: path)
        var module = LoRAModule(
          name: name, kind: .linear, a: a, b: b, rank: rank, alpha: alpha, scale: alpha / Double(rank),
          fanInFanOut: false, bias: nil, magnitude: nil)
        module.origin = ModuleOrigin(
          format: .kohya, stem: stem, aTensor: down.name, bTensor: up.name, alphaTensor: found.alpha?.name,
          aShape: down.shape, bShape: up.shape, kernel: kernel)
        modules.append(module)
      } catch {
        guard lenient, error.module != nil else { throw error }
        problems.append(error)
      }
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    // Two stems meeting under one name would be one module twice.
    modules.sort { $0.name < $1.name }
    for (one, next) in zip(modules, modules.dropFirst()) where one.name == next.name {
      throw .moduleMismatch(
        client: path, module: one.name,
        message: "kohya stems '\(one.origin?.stem ?? "")' and '\(next.origin?.stem ?? "")' name the same module")
    }
    var adapter = Adapter(
      path: path, format: .safetensors, config: nil, checkpoint: checkpoint, modules: modules, fullTensors: [])
    adapter.readFormat = .kohya
    adapter.ownScale = true
    adapter.problems = problems
    adapter.formatMetadata = checkpoint.metadata.filter { $0.key.hasPrefix("ss_") }
    return adapter
  }
}
