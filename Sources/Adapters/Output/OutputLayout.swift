import Checkpoints

/// Output ranks, shapes and scales per module, and the PEFT config that describes them.
struct OutputLayout {
  let ranks: [Int]
  let shapes: [[Int]]
  let kinds: [LoRAModule.Kind]
  /// The scale the written config implies per module (1 when folded into the factors).
  let scales: [Double]
  let keepsClientConfig: Bool
  let ggufAlpha: Double

  init(_ merge: Merge) {
    let set = merge.set
    let modules = set.moduleNames.map { set.modules(named: $0) }
    shapes = modules.map { $0.compactMap { $0?.updateShape }.first ?? [0, 0] }
    kinds = modules.map { $0.compactMap { $0?.kind }.first ?? .linear }
    ranks = merge.outputRanks
    // FedAvg of clients that share rank, alpha and rsLoRA keeps their config: B is unscaled.
    let uniform =
      type(of: merge.method).keepsClientConfig
      && modules.allSatisfy { entries in
        let present = entries.compactMap { $0 }
        return present.count == entries.count && Set(present.map(\.rank)).count == 1
          && Set(present.map(\.scale)).count == 1
      } && set.clients.allSatisfy { $0.format != .gguf }
    keepsClientConfig = uniform && set.clients.allSatisfy { $0.config != nil }
    scales = keepsClientConfig ? modules.map { $0.first??.scale ?? 1 } : modules.map { _ in 1 }
    ggufAlpha = Double(ranks.max() ?? 1)
  }

  /// The PEFT config: the clients' own when FedAvg keeps it, else scale 1 (`alpha = r`,
  /// patterns for modules of another rank, no rsLoRA). Unknown keys of the first client's
  /// config are kept.
  func config(for set: ClientSet, merge: Merge) -> JSON {
    // target_modules lists exactly the modules written: suffixes such as "dense" would also
    // attach PEFT to modules the clients never adapted (BERT's pooler.dense).
    let base = (set.clients.first?.config?.raw ?? .object([("peft_type", .string("LORA"))]))
      .setting("target_modules", to: .array(set.moduleNames.map { .string($0) }))
      .setting("lora_bias", to: .bool(set.hasBias))
    if keepsClientConfig { return base }
    let common = AdapterConfig.commonRank(ranks)
    var rankPattern: [(key: String, value: JSON)] = []
    for (module, rank) in zip(set.moduleNames, ranks) where rank != common { rankPattern.append((module, JSON(rank))) }
    return
      base
      .setting("peft_type", to: .string("LORA"))
      .setting("r", to: JSON(common))
      .setting("lora_alpha", to: JSON(common))
      .setting("use_rslora", to: .bool(false))
      .setting("rank_pattern", to: .object(rankPattern))
      .setting("alpha_pattern", to: .object(rankPattern))
      .setting(
        "base_model_name_or_path",
        to: set.clients.compactMap { $0.config?.baseModel }.first.map { .string($0) } ?? .null)
  }
}
