import Checkpoints

extension Adapter {
  /// The PEFT config of a checkpoint: the one its metadata carries (fedlora's bare files), else
  /// `adapter_config.json` beside it; nil when it has neither.
  static func readConfig(of checkpoint: Checkpoint) throws(AdapterError) -> AdapterConfig? {
    var config: AdapterConfig?
    if let embedded = checkpoint.metadata.first(where: { $0.key == AdapterConfig.metadataKey })?.value {
      // A bare safetensors adapter fedlora wrote carries its config (rank and alpha patterns).
      let json = try AdapterError.wrap { () throws(CheckpointError) in
        try JSON.parse(Array(embedded.utf8), path: checkpoint.path + " (" + AdapterConfig.metadataKey + ")")
      }
      config = try AdapterConfig(json: json, path: checkpoint.path)
    } else {
      let configPath = checkpoint.folder + "/adapter_config.json"
      // A config that is there but cannot be read (a FIFO, a link out of the folder) is an
      // error, not an adapter without a config.
      if Checkpoint.exists(configPath) {
        let bytes = try AdapterError.wrap { () throws(CheckpointError) in
          try ModelFolder.contents(of: "adapter_config.json", in: checkpoint.folder)
        }
        let json: JSON
        do { json = try JSON.parse(bytes, path: configPath) } catch {
          throw .badConfig(
            path: configPath,
            message: String(
              error.description.dropFirst(error.description.hasPrefix(configPath + ": ") ? configPath.count + 2 : 0)))
        }
        config = try AdapterConfig(json: json, path: configPath)
      }
    }
    return config
  }

  /// PEFT (and fedlora's bare safetensors): `lora_A.weight` `[r, in]` and `lora_B.weight`
  /// `[out, r]` (or `lora_embedding_A/B`) per module, scaled by the config's alpha (rsLoRA and
  /// patterns too), else by `alpha`; other tensors are full tensors (`modules_to_save`).
  static func loadPEFT(_ checkpoint: Checkpoint, config: AdapterConfig?, alpha: Double?, lenient: Bool)
    throws(AdapterError) -> Adapter
  {
    let path = checkpoint.path
    var parts: [String: [String: Tensor]] = [:]
    var full: [Tensor] = []
    for tensor in checkpoint.tensors {
      if let (module, part) = ModuleName.fromPEFT(tensor.name) {
        parts[module, default: [:]][part] = tensor
      } else {
        full.append(tensor)
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (name, found) in parts.sorted(by: { $0.key < $1.key }) {
      let embedding = found["lora_embedding_A"] != nil || found["lora_embedding_B"] != nil
      let (aKey, bKey) = embedding ? ("lora_embedding_A", "lora_embedding_B") : ("lora_A.weight", "lora_B.weight")
      let (a, b) = (found[aKey], found[bKey])
      if let problem = pairProblem(path: path, module: name, a: a, b: b, names: (aKey, bKey)) {
        guard lenient else { throw problem }
        problems.append(problem)
        continue
      }
      guard let a, let b else { continue }
      let rank = a.shape[0]
      let (moduleAlpha, scale): (Double, Double)
      if let config {
        (moduleAlpha, scale) = config.alphaAndScale(for: name, rank: rank)
      } else {
        guard let alpha else { throw .missingAlpha(path: path) }
        (moduleAlpha, scale) = (alpha, alpha / Double(rank))
      }
      var module = LoRAModule(
        name: name, kind: embedding ? .embedding : .linear, a: a, b: b, rank: rank, alpha: moduleAlpha, scale: scale,
        fanInFanOut: config?.fanInFanOut ?? false, bias: found["lora_B.bias"], magnitude: found["lora_magnitude_vector"]
      )
      if let claimed = config?.rankAndAlpha(for: name).rank, claimed != rank {
        module.configRank = claimed
        problems.append(.configRankMismatch(path: path, module: name, configRank: claimed, tensorRank: rank))
      }
      modules.append(module)
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    var adapter = Adapter(
      path: path, format: config == nil ? .safetensors : .peft, config: config, checkpoint: checkpoint,
      modules: modules, fullTensors: full)
    adapter.problems = problems
    return adapter
  }

  /// Why a module's tensors do not form a LoRA pair `A [r, in]`, `B [out, r]` (nil when they do).
  static func pairProblem(path: String, module: String, a: Tensor?, b: Tensor?, names: (a: String, b: String))
    -> AdapterError?
  {
    guard let a else { return .unpairedModule(path: path, module: module, missing: names.a) }
    guard let b else { return .unpairedModule(path: path, module: module, missing: names.b) }
    // Rank at least 1, and every dimension within what BLAS/LAPACK index (Int32): a file can
    // claim `d = k = 2^40` for factors of rank 0 in a few bytes.
    guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == b.shape[1], a.shape[0] >= 1,
      (a.shape + b.shape).allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) })
    else {
      return .badFactorShape(path: path, module: module, a: a.shape, b: b.shape)
    }
    return nil
  }
}
