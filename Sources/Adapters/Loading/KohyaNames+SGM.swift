/// sd-scripts' SDXL kohya names (`sdxl_train_network.py` trains on the sgm/original UNet):
/// `lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`, `lora_unet_middle_block_0_in_layers_2`,
/// `lora_unet_output_blocks_2_2_conv`, `lora_unet_input_blocks_3_0_op`. diffusers maps them in two steps:
/// `_maybe_map_sgm_blocks_to_diffusers` renumbers the blocks with the pipeline UNet's
/// `layers_per_block` (input block `i` is down block `(i - 1) / (L + 1)`, layer `(i - 1) % (L + 1)`;
/// output block `i` is up block `i / (L + 1)`, layer `i % (L + 1)`; inner index 0 resnets, 1
/// attentions, 2 upsamplers; `op` a downsampler; middle blocks 0, 1, 2 resnet 0, attention 0,
/// resnet 1), then `_convert_unet_lora_key` renames the resnet layers (`in_layers_2` -> `conv1`,
/// `out_layers_3` -> `conv2`, `emb_layers_1` -> `time_emb_proj`, `skip_connection` ->
/// `conv_shortcut`, `op` -> `conv`). Both steps are replayed here, and a name is taken only when
/// the module it gives is one a UNet has and maps back to the same stem (``sgmStem(of:layersPerBlock:)``):
/// where diffusers' rules land on no UNet module (an upsampler in a block without attention,
/// `output_blocks_2_1_conv`, which diffusers reads as `attentions.2.conv`; a layer index past
/// `layers_per_block`), the name is refused, never guessed.
extension KohyaNames {
  /// sd-scripts' SDXL names outside the blocks, which `_convert_unet_lora_key` maps without a config.
  static let sgmFixed: [(sgm: String, module: String)] = [
    ("input_blocks_0_0", "conv_in"), ("out_2", "conv_out"), ("time_embed_0", "time_embedding.linear_1"),
    ("time_embed_2", "time_embedding.linear_2"), ("label_emb_0_0", "add_embedding.linear_1"),
    ("label_emb_0_2", "add_embedding.linear_2"),
  ]
  /// The resnet layers of the sgm UNet and their diffusers names.
  static let sgmResnet: [(sgm: String, module: String)] = [
    ("in_layers_2", "conv1"), ("out_layers_3", "conv2"), ("emb_layers_1", "time_emb_proj"),
    ("skip_connection", "conv_shortcut"),
  ]
  /// The block patterns diffusers tells the two UNet namings apart by.
  static let sgmPatterns = ["input_blocks", "middle_block", "output_blocks"]
  static let diffusersPatterns = ["down_blocks", "mid_block", "up_blocks"]

  /// Whether a stem is an sgm block name, which needs `layers_per_block` (conv_in's
  /// `input_blocks_0_0` does not: diffusers maps it directly).
  static func isSGMBlock(_ stem: String) -> Bool {
    guard stem.hasPrefix("lora_unet_") else { return false }
    let body = stem.dropFirst("lora_unet_".count)
    return (body.hasPrefix("input_blocks_") && !body.hasPrefix("input_blocks_0_0"))
      || body.hasPrefix("middle_block_") || body.hasPrefix("output_blocks_")
  }

  /// Whether a stem is in sd-scripts' SDXL (sgm) naming: a block name or one of ``sgmFixed``.
  static func isSGM(_ stem: String) -> Bool {
    guard stem.hasPrefix("lora_unet_") else { return false }
    let body = String(stem.dropFirst("lora_unet_".count))
    return isSGMBlock(stem) || sgmFixed.contains { $0.sgm == body }
  }

  /// Whether a UNet stem uses diffusers' block names (`down_blocks`, `mid_block`, `up_blocks`).
  static func isDiffusersBlock(_ stem: String) -> Bool {
    stem.hasPrefix("lora_unet_") && diffusersPatterns.contains { stem.contains($0) }
  }

  /// The stem `_maybe_map_sgm_blocks_to_diffusers` gives an sgm block stem (nil where it raises:
  /// an index that is not a number, a middle block past 2, an inner index past 2).
  static func sgmRenumbered(_ stem: String, layersPerBlock: Int) -> String? {
    // key.split("_"): [lora, unet, input, blocks, ID, INNER, ...] (block_slice_pos 5).
    let parts = stem.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
    guard parts.count >= 6, let id = Int(parts[4]), id >= 0 else { return nil }
    let n = layersPerBlock + 1
    let inner = ["resnets", "attentions", "upsamplers"]
    switch parts[2] + "_" + parts[3] {
    case "input_blocks":
      guard let innerID = Int(parts[5]), innerID >= 0, innerID < 3, id >= 1 else { return nil }
      let op = stem.contains("op")
      let renamed = [String((id - 1) / n), op ? "downsamplers" : inner[innerID], op ? "0" : String((id - 1) % n)]
      return (parts[..<4] + renamed + parts[6...]).joined(separator: "_")
    case "middle_block":
      let renamed: [String]
      switch id {
      case 0: renamed = ["resnets", "0"]
      case 1: renamed = ["attentions", "0"]
      case 2: renamed = ["resnets", "1"]
      default: return nil
      }
      return (parts[..<4] + renamed + parts[5...]).joined(separator: "_")
    case "output_blocks":
      guard let innerID = Int(parts[5]), innerID >= 0, innerID < 3 else { return nil }
      let renamed = [String(id / n), inner[innerID], innerID < 2 ? String(id % n) : "0"]
      return (parts[..<4] + renamed + parts[6...]).joined(separator: "_")
    default:
      return nil
    }
  }

  /// What diffusers reads an sgm stem as (its module name, with the `unet.` prefix), whether or
  /// not a UNet has that module; nil where diffusers' mapping raises.
  static func sgmDiffusersReading(_ stem: String, layersPerBlock: Int?) -> String? {
    let renumbered: String
    if isSGMBlock(stem) {
      guard let layersPerBlock, let value = sgmRenumbered(stem, layersPerBlock: layersPerBlock) else { return nil }
      renumbered = value
    } else {
      renumbered = stem
    }
    return converted(renumbered).map { "unet." + $0.module }
  }

  /// The diffusers module (`unet.down_blocks.1.attentions.0...`) of an sgm stem: diffusers'
  /// reading, taken only when it is a UNet module that maps back to the stem; nil otherwise
  /// (and for an sgm block stem without `layersPerBlock`).
  static func sgmModule(_ stem: String, layersPerBlock: Int?) -> String? {
    guard let reading = sgmDiffusersReading(stem, layersPerBlock: layersPerBlock),
      sgmStem(of: reading, layersPerBlock: layersPerBlock) == stem
    else { return nil }
    return reading
  }

  /// The sgm stem of a diffusers UNet module (`unet.` prefix), as sd-scripts' SDXL UNet names
  /// it; nil for a module the sgm naming has no exact name for. The inverse of ``sgmModule(_:layersPerBlock:)``.
  static func sgmStem(of module: String, layersPerBlock: Int?) -> String? {
    guard module.hasPrefix("unet.") else { return nil }
    let name = String(module.dropFirst("unet.".count))
    if let fixed = sgmFixed.first(where: { $0.module == name }) { return "lora_unet_" + fixed.sgm }
    guard let layersPerBlock else { return nil }
    let n = layersPerBlock + 1
    let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    let isMid = parts.first == "mid_block"
    // down_blocks.B.KIND.J.REST / up_blocks.B.KIND.J.REST / mid_block.KIND.J.REST
    let at = isMid ? 1 : 2
    guard parts.count > at + 2, let layer = Int(parts[at + 1]), String(layer) == parts[at + 1] else { return nil }
    let block: Int
    if isMid {
      block = 0
    } else {
      guard let value = Int(parts[1]), String(value) == parts[1] else { return nil }
      block = value
    }
    let kind = parts[at]
    let rest = Array(parts[(at + 2)...])
    let tail: String
    let inner: Int
    switch kind {
    case "resnets":
      guard rest.count == 1, let sgm = sgmResnet.first(where: { $0.module == rest[0] })?.sgm else { return nil }
      (tail, inner) = (sgm, 0)
    case "attentions":
      guard isAttentionTail(rest) else { return nil }
      (tail, inner) = (rest.joined(separator: "_"), 1)
    case "downsamplers", "upsamplers":
      guard !isMid, layer == 0, rest == ["conv"] else { return nil }
      (tail, inner) = (kind == "downsamplers" ? "op" : "conv", kind == "downsamplers" ? 0 : 2)
    default:
      return nil
    }
    switch parts[0] {
    case "down_blocks":
      if kind == "downsamplers" { return "lora_unet_input_blocks_\((block + 1) * n)_0_op" }
      guard kind != "upsamplers", layer < layersPerBlock else { return nil }
      return "lora_unet_input_blocks_\(1 + block * n + layer)_\(inner)_\(tail)"
    case "up_blocks":
      if kind == "upsamplers" { return "lora_unet_output_blocks_\(block * n + layersPerBlock)_2_conv" }
      guard kind != "downsamplers", layer <= layersPerBlock else { return nil }
      return "lora_unet_output_blocks_\(block * n + layer)_\(inner)_\(tail)"
    case "mid_block":
      let index: Int
      switch (kind, layer) {
      case ("resnets", 0): index = 0
      case ("attentions", 0): index = 1
      case ("resnets", 1): index = 2
      default: return nil
      }
      return "lora_unet_middle_block_\(index)_\(tail)"
    default:
      return nil
    }
  }

  /// The modules of a UNet attention block a kohya LoRA adapts: `proj_in`, `proj_out`, and a
  /// transformer block's attention projections and feed-forward layers.
  private static func isAttentionTail(_ rest: [String]) -> Bool {
    if rest == ["proj_in"] || rest == ["proj_out"] { return true }
    guard rest.count >= 3, rest[0] == "transformer_blocks", let index = Int(rest[1]), String(index) == rest[1] else {
      return false
    }
    let inner = Array(rest[2...])
    if inner == ["ff", "net", "0", "proj"] || inner == ["ff", "net", "2"] { return true }
    guard inner.count >= 2, inner[0] == "attn1" || inner[0] == "attn2" else { return false }
    return [["to_q"], ["to_k"], ["to_v"], ["to_out", "0"]].contains(Array(inner[1...]))
  }
}
