/// kohya-ss module names -> diffusers' dotted names, exactly as diffusers reads them
/// (`lora_conversion_utils._convert_unet_lora_key` / `_convert_text_encoder_lora_key`, then
/// `convert_unet_state_dict_to_peft` / `DIFFUSERS_OLD_TO_PEFT`), so a kohya and a diffusers client
/// of one model meet under one name: `lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q`
/// -> `unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`.
///
/// kohya joins the module path with `_`, which module names also contain, so the split is
/// ambiguous in general; diffusers resolves it with string rules written for the SD / SDXL
/// UNet and the CLIP text encoders. The mapping is used only where those rules are exact: a
/// stem in diffusers' own block naming whose every resulting component is a known UNet or CLIP
/// module name and that flattens back to the stem. sd-scripts' SDXL names (the sgm/original UNet's
/// `input_blocks_4_1_...`, `middle_block_1_...`, `output_blocks_2_2_conv`, `in_layers_2`...) are
/// mapped as diffusers' `_maybe_map_sgm_blocks_to_diffusers` maps them, which needs the UNet's
/// `layers_per_block` (``sgmModule(_:layersPerBlock:)``), and only where mapping the result back
/// gives the stem again. Anything else (Flux/SD3 names, which diffusers converts by splitting
/// fused tensors) keeps the kohya stem as its identity: such clients merge with kohya clients, and
/// a mix with diffusers clients is refused by module name.
enum KohyaNames {
  /// The components the mapping may produce (diffusers' `UNet2DConditionModel` and
  /// transformers' `CLIPTextModel` / `CLIPTextModelWithProjection` module names).
  static let known: Set<String> = [
    "down_blocks", "up_blocks", "mid_block", "attentions", "resnets", "transformer_blocks", "attn1", "attn2", "to_q",
    "to_k", "to_v", "to_out", "ff", "net", "proj", "proj_in", "proj_out", "conv1", "conv2", "conv_shortcut",
    "time_emb_proj", "downsamplers", "upsamplers", "conv", "conv_in", "conv_out", "time_embedding", "linear_1",
    "linear_2", "text_model", "encoder", "layers", "self_attn", "q_proj", "k_proj", "v_proj", "out_proj", "mlp",
    "fc1", "fc2", "text_projection", "add_embedding",
  ]

  /// The diffusers module name of a kohya stem in diffusers' block naming; nil when diffusers'
  /// rules do not give it exactly (the stem is then the identity, unless it is an sgm name:
  /// ``moduleName(_:layersPerBlock:)``).
  static func diffusersName(_ stem: String) -> String? {
    guard let (component, module, body) = converted(stem), module.replacingAll(".", with: "_") == body else {
      return nil
    }
    return component + "." + module
  }

  /// The module a kohya stem names: diffusers' dotted name where its rules give it exactly (an
  /// sgm block name with the UNet's `layersPerBlock`), else nil.
  static func moduleName(_ stem: String, layersPerBlock: Int?) -> String? {
    isSGM(stem) ? sgmModule(stem, layersPerBlock: layersPerBlock) : diffusersName(stem)
  }

  /// diffusers' rules applied to a stem: its component (`unet`, `text_encoder`...), the module
  /// name they give when every component of it is a known UNet or CLIP module name, and the
  /// stem's body (the part after `lora_unet_` / `lora_te*_`).
  static func converted(_ stem: String) -> (component: String, module: String, body: String)? {
    let unet = stem.hasPrefix("lora_unet_")
    let prefix: (kohya: String, component: String)
    if unet {
      prefix = ("lora_unet_", "unet")
    } else if stem.hasPrefix("lora_te_") {
      prefix = ("lora_te_", "text_encoder")
    } else if stem.hasPrefix("lora_te1_") {
      prefix = ("lora_te1_", "text_encoder")
    } else if stem.hasPrefix("lora_te2_") {
      prefix = ("lora_te2_", "text_encoder_2")
    } else {
      return nil
    }
    let body = String(stem.dropFirst(prefix.kohya.count))
    // diffusers converts the whole key (`STEM.lora_down.weight`), and some rules need the suffix.
    let key = body.replacingAll("_", with: ".") + ".lora.down.weight"
    let name = unet ? unetKey(key) : textEncoderKey(key)
    guard name.hasSuffix(".lora_A.weight") else { return nil }
    let module = String(name.dropLast(".lora_A.weight".count))
    let parts = module.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.allSatisfy({ known.contains(String($0)) || (!$0.isEmpty && $0.allSatisfy(\.isASCIIDigit)) }) else {
      return nil
    }
    return (prefix.component, module, body)
  }

  /// A UNet key (`STEM.lora.down.weight`, `_` read as `.`) through diffusers'
  /// `_convert_unet_lora_key`, rule by rule in its order, then `convert_unet_state_dict_to_peft`.
  private static func unetKey(_ key: String) -> String {
    var name = key
    for (from, to) in [
      ("input.blocks.0.0", "conv_in"), ("out.2", "conv_out"), ("input.blocks", "down_blocks"),
      ("down.blocks", "down_blocks"), ("middle.block", "mid_block"), ("mid.block", "mid_block"),
      ("output.blocks", "up_blocks"), ("up.blocks", "up_blocks"), ("transformer.blocks", "transformer_blocks"),
      ("to.q.lora", "to_q_lora"), ("to.k.lora", "to_k_lora"), ("to.v.lora", "to_v_lora"),
      ("to.out.0.lora", "to_out_lora"), ("proj.in", "proj_in"), ("proj.out", "proj_out"),
      ("emb.layers", "time_emb_proj"), ("conv.in", "conv_in"), ("conv.out", "conv_out"),
      ("time.embed.0", "time_embedding.linear_1"), ("time.embed.2", "time_embedding.linear_2"),
      ("label.emb.0.0", "add_embedding.linear_1"), ("label.emb.0.2", "add_embedding.linear_2"),
      ("time.embedding.linear.1", "time_embedding.linear_1"), ("time.embedding.linear.2", "time_embedding.linear_2"),
    ] {
      name = name.replacingAll(from, with: to)
    }
    // re.sub(r"\.\d+(?=\D*$)", "", name, count=1): the last run of digits, when a "." precedes it.
    if name.contains("emb"), !name.contains("time.emb.proj"),
      let last = name.lastIndex(where: \.isASCIIDigit)
    {
      var first = last
      while first > name.startIndex, name[name.index(before: first)].isASCIIDigit {
        first = name.index(before: first)
      }
      if first > name.startIndex, name[name.index(before: first)] == "." {
        name.removeSubrange(name.index(before: first)...last)
      }
    }
    if name.contains(".in.") { name = name.replacingAll("in.layers.2", with: "conv1") }
    if name.contains(".out.") { name = name.replacingAll("out.layers.3", with: "conv2") }
    if name.contains("downsamplers") || name.contains("upsamplers") { name = name.replacingAll("op", with: "conv") }
    if name.contains("skip") { name = name.replacingAll("skip.connection", with: "conv_shortcut") }
    name = name.replacingAll("time.emb.proj", with: "time_emb_proj").replacingAll(
      "conv.shortcut", with: "conv_shortcut")
    if name.contains("transformer_blocks"), name.contains("attn1") || name.contains("attn2") {
      name = name.replacingAll("attn1", with: "attn1.processor").replacingAll("attn2", with: "attn2.processor")
    }
    // convert_unet_state_dict_to_peft (UNET_TO_DIFFUSERS); PEFT's module names have no `.processor`.
    for (from, to) in [
      (".to_out_lora.down", ".to_out.0.lora_A"), (".to_q_lora.down", ".to_q.lora_A"),
      (".to_k_lora.down", ".to_k.lora_A"),
      (".to_v_lora.down", ".to_v.lora_A"), (".lora.down", ".lora_A"), (".processor.", "."),
    ] {
      name = name.replacingAll(from, with: to)
    }
    return name
  }

  /// A text-encoder key through diffusers' `_convert_text_encoder_lora_key`, then
  /// `DIFFUSERS_OLD_TO_PEFT` / `DIFFUSERS_TO_PEFT`.
  private static func textEncoderKey(_ key: String) -> String {
    var name = key
    for (from, to) in [
      ("text.model", "text_model"), ("self.attn", "self_attn"), ("q.proj.lora", "to_q_lora"),
      ("k.proj.lora", "to_k_lora"), ("v.proj.lora", "to_v_lora"), ("out.proj.lora", "to_out_lora"),
      ("text.projection", "text_projection"),
    ] {
      name = name.replacingAll(from, with: to)
    }
    if !name.contains("self_attn"), !name.contains("text_projection"), name.contains("mlp") {
      name = name.replacingAll(".lora.", with: ".lora_linear_layer.")
    }
    // DIFFUSERS_OLD_TO_PEFT / DIFFUSERS_TO_PEFT.
    for (from, to) in [
      (".to_q_lora.down", ".q_proj.lora_A"), (".to_k_lora.down", ".k_proj.lora_A"),
      (".to_v_lora.down", ".v_proj.lora_A"),
      (".to_out_lora.down", ".out_proj.lora_A"), (".lora_linear_layer.down", ".lora_A"), (".lora.down", ".lora_A"),
    ] {
      name = name.replacingAll(from, with: to)
    }
    return name
  }
}

extension String {
  /// Every occurrence of `target` replaced, left to right (Python's `str.replace`).
  func replacingAll(_ target: String, with replacement: String) -> String {
    guard !target.isEmpty, contains(target) else { return self }
    var result = ""
    var rest = self[...]
    while let range = rest.firstRange(of: target) {
      result += rest[..<range.lowerBound]
      result += replacement
      rest = rest[range.upperBound...]
    }
    return result + rest
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
