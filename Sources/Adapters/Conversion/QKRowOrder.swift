import Checkpoints

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
  static func isPermuted(architecture: String, modules: [String]) -> Bool {
    architecture == "llama" && modules.contains { LlamaGGUF.isQueryOrKey($0) }
  }

  /// The metadata that records the order a GGUF LoRA is written in.
  static func metadata(heads: LlamaGGUF.Heads?) -> [(key: String, value: GGUFValue)] {
    guard let heads else { return [(key, .string("huggingface"))] }
    return [
      (key, .string("llama.cpp")), (headCountKey, .u32(UInt32(clamping: heads.query))),
      (headCountKVKey, .u32(UInt32(clamping: heads.keyValue))),
    ]
  }

  /// What a GGUF LoRA records: nil when it records nothing (a file another tool wrote);
  /// `.some(nil)` for Hugging Face order; the head counts for llama.cpp's.
  static func recorded(in gguf: GGUFFile, path: String) throws(AdapterError) -> LlamaGGUF.Heads?? {
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
        throw .badConfig(
          path: path,
          message: "\(key) is llama.cpp but \(headCountKey) / \(headCountKVKey) are missing or not head counts")
      }
      return .some(heads)
    default: throw .badConfig(path: path, message: "\(key) must be \"llama.cpp\" or \"huggingface\"")
    }
  }

  /// The head counts the clients themselves give: a GGUF LoRA that records them, or a PEFT
  /// client whose `base_model_name_or_path` is a local folder with a llama `config.json`.
  /// A recorded order that cannot be read is an error, not silence. A base folder's config that
  /// gives no head counts (a GPT-2 or BERT base: not a llama-family model) gives no order.
  public static func heads(from adapters: [Adapter]) throws(AdapterError) -> LlamaGGUF.Heads? {
    for adapter in adapters {
      if let heads = adapter.rowOrderHeads { return heads }
      if let gguf = adapter.checkpoint.gguf, let recorded = try recorded(in: gguf, path: adapter.path),
        let heads = recorded
      {
        return heads
      }
      if let base = adapter.config?.baseModel, Checkpoint.isFile(base + "/config.json"),
        let heads = try? LlamaGGUF.heads(configAt: base + "/config.json")
      {
        return heads
      }
    }
    return nil
  }

  /// The head counts of a base checkpoint: a llama GGUF's metadata or the `config.json` beside it.
  public static func heads(base: Checkpoint) throws(AdapterError) -> LlamaGGUF.Heads? {
    if let gguf = base.gguf { return try LlamaGGUF.heads(gguf: gguf) }
    let config = base.folder + "/config.json"
    guard Checkpoint.isFile(config) else { return nil }
    let json = try AdapterError.wrap { () throws(CheckpointError) in
      try JSON.parse(MappedFile.contents(of: config), path: config)
    }
    return try LlamaGGUF.heads(config: json, path: config)
  }

  /// The head counts for writing a GGUF LoRA of these modules in llama.cpp's order: nil when
  /// its architecture has no permuted rows; throws when they are needed and unknown.
  static func headsForWriting(architecture: String, modules: [String], heads: LlamaGGUF.Heads?, path: String)
    throws(AdapterError) -> LlamaGGUF.Heads?
  {
    guard isPermuted(architecture: architecture, modules: modules) else { return nil }
    guard let heads else { throw .unknownRowOrder(path: path, writing: true) }
    return heads
  }

  /// The adapters with every pending q/k row order resolved by `heads` (or, failing that, by
  /// what the clients give); throws `unknownRowOrder` for one nobody can resolve.
  public static func resolve(_ adapters: [Adapter], heads: LlamaGGUF.Heads?) throws(AdapterError) -> [Adapter] {
    let heads: LlamaGGUF.Heads? = if let heads { heads } else { try Self.heads(from: adapters) }
    return try adapters.map { adapter throws(AdapterError) in
      guard adapter.pendingRowOrder else { return adapter }
      guard let heads else { throw .unknownRowOrder(path: adapter.path, writing: false) }
      return adapter.withRowOrder(heads)
    }
  }
}
