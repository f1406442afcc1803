import Checkpoints

/// The q/k row order of client adapters: the head counts they give, and the order of those
/// that wait for them resolved.
extension QKRowOrder {
  /// The head counts the clients themselves give: a GGUF LoRA that records them, or a PEFT
  /// client whose `base_model_name_or_path` is a local folder with a llama `config.json`.
  /// A recorded order that cannot be read is an error, not silence. A base folder's config that
  /// gives no head counts (a GPT-2 or BERT base: not a llama-family model) gives no order.
  /// - Parameter adapters: the clients.
  /// - Returns: the first head counts a client gives; nil when none does.
  /// - Throws: ``AdapterError/checkpoint(_:)`` when a GGUF LoRA records head counts that are not ones.
  /// - Complexity: O(clients), plus one `config.json` read per PEFT client naming a local base.
  public static func heads(from adapters: [Adapter]) throws(AdapterError) -> LlamaGGUF.Heads? {
    for adapter in adapters {
      if let heads = adapter.rowOrderHeads { return heads }
      // What a GGUF LoRA records: its head counts, or nil (nothing recorded, or Hugging Face order).
      let own: LlamaGGUF.Heads? = try AdapterError.wrap { () throws(CheckpointError) in
        guard let gguf = adapter.checkpoint.gguf else { return nil }
        return try Self.recorded(in: gguf, path: adapter.path) ?? nil
      }
      if let own { return own }
      if let base = adapter.config?.baseModel, let config = baseConfig(named: base, by: adapter),
        let heads = try? LlamaGGUF.heads(configAt: config)
      {
        return heads
      }
    }
    return nil
  }

  /// The `config.json` of the base model a PEFT adapter names (`base_model_name_or_path`): a
  /// folder as given (from the working folder, as PEFT reads it), else a Hugging Face id in the
  /// local cache, else a relative path written where training ran, found from the adapter's
  /// folder or a folder above it (so `fixtures/adapters/base` is found from anywhere).
  static func baseConfig(named base: String, by adapter: Adapter) -> String? {
    if Checkpoint.isFile(base + "/config.json") { return base + "/config.json" }
    if let snapshot = try? HubCache.snapshot(for: base), Checkpoint.isFile(snapshot + "/config.json") {
      return snapshot + "/config.json"
    }
    guard !base.hasPrefix("/") else { return nil }
    var folder = PathConflicts.resolve(Checkpoint.folder(holding: adapter.checkpoint.resolvedPath))
    while folder.count > 1 {
      if Checkpoint.isFile(folder + "/" + base + "/config.json") { return folder + "/" + base + "/config.json" }
      folder = String(folder[..<(folder.lastIndex(of: "/") ?? folder.startIndex)])
    }
    return nil
  }

  /// The head counts of a base checkpoint: a llama GGUF's metadata or the `config.json` beside it.
  /// - Parameter base: the base checkpoint.
  /// - Returns: the counts; nil when neither gives any.
  /// - Throws: ``AdapterError/checkpoint(_:)`` for values that are not head counts, or a config that
  ///   cannot be read.
  public static func heads(base: Checkpoint) throws(AdapterError) -> LlamaGGUF.Heads? {
    try AdapterError.wrap { () throws(CheckpointError) in
      if let gguf = base.gguf { return try LlamaGGUF.heads(gguf: gguf) }
      let config = base.folder + "/config.json"
      guard Checkpoint.isFile(config) else { return nil }
      return try LlamaGGUF.heads(config: JSON.parse(MappedFile.contents(of: config), path: config), path: config)
    }
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

  /// The adapters with every pending q/k row order (``Adapter/pendingRowOrder``) resolved by `heads`,
  /// or, failing that, by what the clients give. Call it on loaded clients before a merge.
  /// - Parameters:
  ///   - adapters: the loaded clients.
  ///   - heads: the base model's head counts, when known (`--base-config`, the base).
  /// - Returns: the adapters, each with its `B` rows read in Hugging Face order.
  /// - Throws: ``AdapterError``: `unknown-row-order` for an adapter nobody gives head counts for.
  /// - Complexity: O(modules) per resolved adapter: row orders are computed, no factor is read.
  public static func resolve(_ adapters: [Adapter], heads: LlamaGGUF.Heads?) throws(AdapterError) -> [Adapter] {
    let heads: LlamaGGUF.Heads? = if let heads { heads } else { try Self.heads(from: adapters) }
    return try adapters.map { adapter throws(AdapterError) in
      guard adapter.pendingRowOrder else { return adapter }
      guard let heads else { throw adapter.unknownRowOrder }
      return adapter.withRowOrder(heads)
    }
  }
}

extension Adapter {
  /// The error for q/k rows whose order needs head counts nobody gave.
  var unknownRowOrder: AdapterError {
    sourceFormat == .torchtune
      ? .formatNeedsHeads(path: path, format: "torchtune") : .unknownRowOrder(path: path, writing: false)
  }
}
