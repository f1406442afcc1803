import Checkpoints

/// kohya-ss LoRA files (sd-scripts, ComfyUI, AUTOMATIC1111): `NAME.lora_down.weight`,
/// `NAME.lora_up.weight` and the scalar `NAME.alpha`, NAME being the module path with `.`
/// replaced by `_` under `lora_unet_` / `lora_te_` / `lora_te1_` / `lora_te2_`. The scale is
/// `alpha / rank` (alpha missing or 0: rank). Conv LoRA (LoCon) factors
/// `[r, in, kh, kw]` / `[out, r, 1, 1]` are read as their exact matrix views. What is not plain
/// LoRA (LoHa, LoKr, DoRA, Tucker `lora_mid`, LyCORIS full/norm diffs) is refused by name.
/// sd-scripts' SDXL (sgm) block names are mapped with the UNet's `layers_per_block`: the
/// model config's, else 2 for a file whose `ss_base_model_version` is SDXL's (sd-scripts' only
/// UNet with those names, `sdxl_original_unet`, has 2), else refused by name.
enum KohyaReader {
  /// sd-scripts' `ss_base_model_version` prefix of SDXL models (`sdxl_base_v1-0`).
  static let sdxlVersionPrefix = "sdxl_"
  /// SDXL's `layers_per_block` (diffusers' `unet/config.json` of SDXL, sd-scripts' `sdxl_original_unet`).
  static let sdxlLayersPerBlock = 2

  /// Tensor suffixes of the LyCORIS variants that are not `W + s B A`.
  private static let variants: [(suffix: String, what: String)] = [
    ("hada_", "LoHa (hada_*)"), ("lokr_", "LoKr (lokr_*)"), ("dora_scale", "DoRA (dora_scale)"),
    ("lora_mid", "LoCon with a Tucker core (lora_mid)"), ("diff_b", "a bias difference (diff_b)"),
    ("diff", "a full-weight difference (diff)"), ("w_norm", "a norm layer (w_norm)"),
    ("b_norm", "a norm layer (b_norm)"),
    ("on_input", "IA3 (on_input)"), ("weight", "IA3 or a full weight"),
  ]

  static func load(_ checkpoint: Checkpoint, model: BaseModelConfig?, lenient: Bool) throws(AdapterError) -> Adapter {
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
    let layersPerBlock = try sgmLayersPerBlock(
      checkpoint, stems: parts.mapValues { $0.down ?? $0.up ?? $0.alpha }, model: model)
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (stem, found) in parts.sorted(by: { $0.key < $1.key }) {
      let name: String
      if KohyaNames.isSGM(stem) {
        guard let module = KohyaNames.sgmModule(stem, layersPerBlock: layersPerBlock) else {
          let reading = KohyaNames.sgmDiffusersReading(stem, layersPerBlock: layersPerBlock)
          throw .unsupportedVariant(
            path: path, tensor: (found.down ?? found.up ?? found.alpha)?.name ?? stem,
            variant:
              "an SDXL (sgm) kohya name that diffusers' mapping (layers_per_block \(layersPerBlock.map(String.init) ?? "unknown")) "
              + (reading.map { "reads as '\($0)', which is no UNet module of that layout or does not map back to it" }
                ?? "cannot read")
              + ": not mapped exactly")
        }
        name = module
      } else {
        name = KohyaNames.diffusersName(stem) ?? stem
      }
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
        if KohyaNames.isSGMBlock(stem) { module.origin?.layersPerBlock = layersPerBlock }
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

  /// The UNet's `layers_per_block` for a file's sgm block names (nil when it has none): the
  /// model config's, else SDXL's when `ss_base_model_version` says SDXL; a file that mixes sgm
  /// and diffusers block names (diffusers drops the sgm ones), a config that contradicts the
  /// file's SDXL, or sgm names with neither, refused by name.
  static func sgmLayersPerBlock(_ checkpoint: Checkpoint, stems: [String: Tensor?], model: BaseModelConfig?)
    throws(AdapterError) -> Int?
  {
    let path = checkpoint.path
    let tensor = { (stem: String) in (stems[stem] ?? nil)?.name ?? stem }
    let sorted = stems.keys.sorted()
    guard let sgm = sorted.first(where: KohyaNames.isSGMBlock) else {
      // conv_in / conv_out / time_embed in sgm naming beside diffusers blocks: diffusers drops
      // input_blocks_0_0 then; the others it maps either way.
      if let first = sorted.first(where: { $0.hasPrefix("lora_unet_input_blocks_0_0") }),
        let other = sorted.first(where: KohyaNames.isDiffusersBlock)
      {
        throw .mixedFormats(
          path: path, first: tensor(first), firstFormat: "kohya in SDXL's sgm naming", second: tensor(other),
          secondFormat: "kohya in diffusers' block naming (diffusers drops the sgm names of such a file)")
      }
      return nil
    }
    if let other = sorted.first(where: KohyaNames.isDiffusersBlock) {
      throw .mixedFormats(
        path: path, first: tensor(sgm),
        firstFormat: "kohya in SDXL's sgm naming (input_blocks/middle_block/output_blocks)",
        second: tensor(other),
        secondFormat:
          "kohya in diffusers' block naming (down_blocks/mid_block/up_blocks; diffusers drops the sgm names of such a file)"
      )
    }
    let version = checkpoint.metadata.first { $0.key == "ss_base_model_version" }?.value
    let sdxl = version?.hasPrefix(sdxlVersionPrefix) == true ? sdxlLayersPerBlock : nil
    if let given = model?.layersPerBlock {
      if let sdxl, let version, given != sdxl {
        throw .badConfig(
          path: model?.path ?? "",
          message:
            "layers_per_block is \(given), but \(path) was trained on \(version) (ss_base_model_version), whose UNet has \(sdxl): not this LoRA's UNet"
        )
      }
      return given
    }
    guard let sdxl else {
      throw .formatNeedsConfig(
        path: path, tensor: tensor(sgm),
        reason:
          "an SDXL (sgm) kohya block name, which diffusers maps with the UNet's layers_per_block, and "
          + (version.map { "the file's ss_base_model_version '\($0)' is not SDXL's" }
            ?? "the file names no base model (no ss_base_model_version)")
          + "; give --base-config with the UNet's config.json (unet/config.json of a diffusers pipeline)")
    }
    return sdxl
  }
}
