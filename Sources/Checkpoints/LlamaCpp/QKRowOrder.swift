/// The order of a llama GGUF LoRA's q/k `lora_b` rows. llama.cpp's converter permutes them per
/// head (as it permutes the base's q/k weights), so reading or writing one needs the head
/// counts; fedlora never guesses them. The GGUF LoRAs fedlora writes say which order they use
/// and, for llama.cpp's, the head counts, so they read back with nothing else given.
public enum QKRowOrder {
  /// GGUF metadata: `"llama.cpp"` or `"huggingface"`.
  static let key = "fedlora.qk_row_order"
  static let headCountKey = "fedlora.head_count"
  static let headCountKVKey = "fedlora.head_count_kv"

  /// Whether a GGUF LoRA of `architecture` with these modules holds q/k rows that llama.cpp's
  /// converter permuted.
  package static func isPermuted(architecture: String, modules: [String]) -> Bool {
    architecture == "llama" && modules.contains { LlamaGGUF.isQueryOrKey($0) }
  }

  /// The metadata that records the order a GGUF LoRA is written in.
  package static func metadata(heads: LlamaGGUF.Heads?) -> [(key: String, value: GGUFValue)] {
    guard let heads else { return [(key, .string("huggingface"))] }
    return [
      (key, .string("llama.cpp")), (headCountKey, .u32(UInt32(clamping: heads.query))),
      (headCountKVKey, .u32(UInt32(clamping: heads.keyValue))),
    ]
  }

  /// What a GGUF LoRA records: nil when it records nothing (a file another tool wrote);
  /// `.some(nil)` for Hugging Face order; the head counts for llama.cpp's.
  package static func recorded(in gguf: GGUFFile, path: String) throws(CheckpointError) -> LlamaGGUF.Heads?? {
    guard let value = gguf[key] else { return nil }
    switch value.stringValue {
    case "huggingface": return .some(nil)
    case "llama.cpp":
      // The same checks as every other head count: whole, bounded, KV dividing query.
      guard
        let heads = LlamaGGUF.Heads(
          query: gguf[headCountKey]?.doubleValue, keyValue: gguf[headCountKVKey]?.doubleValue),
        gguf[headCountKVKey] != nil
      else {
        throw .badModelConfig(
          path: path,
          message: "\(key) is llama.cpp but \(headCountKey) / \(headCountKVKey) are missing or not head counts")
      }
      return .some(heads)
    default: throw .badModelConfig(path: path, message: "\(key) must be \"llama.cpp\" or \"huggingface\"")
    }
  }
}
