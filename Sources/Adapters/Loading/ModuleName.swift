import Checkpoints

/// One identity per adapted weight, whatever the file format: the base model's weight name in
/// Hugging Face spelling without `.weight` (`model.layers.0.self_attn.q_proj`). llama.cpp names
/// (`blk.0.attn_q`) map to it for the llama family; other GGUF names are kept as they are.
public enum ModuleName {
  /// The module identity of a llama.cpp tensor name (`blk.3.attn_q.weight` ->
  /// `model.layers.3.self_attn.q_proj`); a name of another family is kept, without `.weight`.
  /// - Parameter name: a llama.cpp tensor or module name.
  /// - Returns: the module's identity.
  public static func fromGGUF(_ name: String) -> String {
    let hf = LlamaGGUF.hfName(name.hasSuffix(".weight") ? name : name + ".weight")
    let full = hf ?? name
    return full.hasSuffix(".weight") ? String(full.dropLast(7)) : full
  }

  /// The llama.cpp base tensor name of a module (`model.layers.3.self_attn.q_proj` ->
  /// `blk.3.attn_q.weight`).
  /// - Parameter module: the module's identity.
  /// - Returns: the tensor name; nil when no mapping is known.
  public static func toGGUF(_ module: String) -> String? {
    LlamaGGUF.ggufName(module + ".weight") ?? (module.hasPrefix("blk.") ? module + ".weight" : nil)
  }

  /// The identity of a PEFT tensor's module: `base_model.model.X.lora_A.weight` -> `X`.
  static func fromPEFT(_ tensor: String) -> (module: String, part: String)? {
    var name = tensor
    if name.hasPrefix("base_model.model.") { name.removeFirst("base_model.model.".count) }
    for (suffix, part) in peftSuffixes
    where name.utf8.count > suffix.utf8.count && name.utf8.reversed().starts(with: suffix.utf8.reversed()) {
      return (String(name.dropLast(suffix.count)), part)
    }
    return nil
  }

  /// `(".lora_A.weight", "lora_A.weight")`, with PEFT's `.default.` variants, built once: a
  /// checkpoint of millions of tensors is scanned with no string built per name.
  private static let peftSuffixes: [(suffix: String, part: String)] =
    ["lora_A.weight", "lora_B.weight", "lora_B.bias", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"]
    .flatMap { part in
      [("." + part, part), ("." + part.replacingDefault(), part)]
    }
}

private extension String {
  /// PEFT names some tensors with the adapter name: `lora_A.default.weight`.
  func replacingDefault() -> String {
    guard let dot = firstIndex(of: ".") else { return self + ".default" }
    return String(self[..<dot]) + ".default" + String(self[dot...])
  }
}
