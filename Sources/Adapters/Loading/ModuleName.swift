/// One identity per adapted weight, whatever the file format: the base model's weight name in
/// Hugging Face spelling without `.weight` (`model.layers.0.self_attn.q_proj`). llama.cpp names
/// (`blk.0.attn_q`) map to it for the llama family; other GGUF names are kept as they are.
public enum ModuleName {
  static let ggufToHF: [(gguf: String, hf: String)] = [
    ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
  ]
  static let ggufGlobal: [(gguf: String, hf: String)] = [("token_embd", "model.embed_tokens"), ("output", "lm_head")]

  /// The module identity of a llama.cpp base tensor name (`blk.3.attn_q.weight`).
  public static func fromGGUF(_ name: String) -> String {
    let base = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
    if let global = ggufGlobal.first(where: { $0.gguf == base }) { return global.hf }
    let parts = base.split(separator: ".", maxSplits: 2).map(String.init)
    if parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]), let mapped = ggufToHF.first(where: { $0.gguf == parts[2] }) {
      return "model.layers.\(layer).\(mapped.hf)"
    }
    return base
  }

  /// The llama.cpp base tensor name of a module (`blk.3.attn_q.weight`), or nil when no
  /// mapping is known.
  public static func toGGUF(_ module: String) -> String? {
    if let global = ggufGlobal.first(where: { $0.hf == module }) { return global.gguf + ".weight" }
    let parts = module.split(separator: ".", maxSplits: 3).map(String.init)
    if parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
      let mapped = ggufToHF.first(where: { $0.hf == parts[3] })
    {
      return "blk.\(layer).\(mapped.gguf).weight"
    }
    return module.hasPrefix("blk.") ? module + ".weight" : nil
  }

  /// The identity of a PEFT tensor's module: `base_model.model.X.lora_A.weight` -> `X`.
  static func fromPEFT(_ tensor: String) -> (module: String, part: String)? {
    var name = tensor
    if name.hasPrefix("base_model.model.") { name.removeFirst("base_model.model.".count) }
    for suffix in ["lora_A.weight", "lora_B.weight", "lora_B.bias", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"] {
      for variant in [suffix, suffix.replacingDefault()] where name.hasSuffix("." + variant) {
        return (String(name.dropLast(variant.count + 1)), suffix)
      }
    }
    return nil
  }
}

private extension String {
  /// PEFT names some tensors with the adapter name: `lora_A.default.weight`.
  func replacingDefault() -> String {
    guard let dot = firstIndex(of: ".") else { return self + ".default" }
    return String(self[..<dot]) + ".default" + String(self[dot...])
  }
}
