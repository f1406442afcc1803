import Checkpoints

/// A client's LoRA adapter, from a PEFT folder, a bare safetensors file or a llama.cpp GGUF.
public struct Adapter: Sendable {

  /// The path as given (folder or file).
  public let path: String
  /// The format it was read as (`peft` whenever it has a config).
  public let format: AdapterFormat
  /// Its PEFT config, from `adapter_config.json` or the file's metadata; nil when it has none.
  public let config: AdapterConfig?
  /// The opened weight file(s).
  public let checkpoint: Checkpoint
  /// Adapted weights, sorted by name.
  public internal(set) var modules: [LoRAModule]
  /// Full tensors carried in the adapter (`modules_to_save`), keyed by their file name.
  public let fullTensors: [Tensor]
  /// What is wrong with single modules: a config rank the tensors do not have (always), and,
  /// when loaded `lenient`, modules that could not be read (an unpaired or misshapen factor).
  /// A merge refuses an adapter with any.
  public var problems: [AdapterError] = []
  /// A GGUF LoRA whose q/k rows are in llama.cpp's order for head counts not yet known: no
  /// product of it may be formed until ``QKRowOrder/resolve(_:heads:)`` gives them.
  public internal(set) var pendingRowOrder = false
  /// The head counts its q/k rows were read back with (GGUF LoRAs in llama.cpp's order).
  public internal(set) var rowOrderHeads: LlamaGGUF.Heads?
  /// The format read when it is not one of ``AdapterFormat``'s (kohya, diffusers, MLX, torchtune).
  var readFormat: SourceFormat? = nil
  /// The metadata a format's tools show (kohya's `ss_*` training notes), in file order.
  public internal(set) var formatMetadata: [(key: String, value: String)] = []
  /// Whether the file gave every module's scale itself (kohya, diffusers, MLX with its config),
  /// so an alpha given to `load` is not used.
  var ownScale = false
  /// The base model's config it was loaded with (`--base-config`), which writers also use
  /// (MLX-LM's `num_layers` from `num_hidden_layers`).
  public internal(set) var baseModel: BaseModelConfig?

  /// The layout the adapter was read from, named in reports and `--json` (`format`).
  public var sourceFormat: SourceFormat { readFormat ?? SourceFormat(rawValue: format.rawValue) ?? .safetensors }

  /// Whether it is DoRA (`use_dora`, or a module with a magnitude vector): not mergeable.
  public var isDoRA: Bool { config?.useDoRA == true || modules.contains { $0.magnitude != nil } }
  /// The stored dtype of its first module's `A` (F32 without modules).
  public var dtype: DType { modules.first?.a.dtype ?? .f32 }
  /// GGUF `general.architecture`; nil for other formats or when absent.
  public var architecture: String? { checkpoint.gguf?["general.architecture"]?.stringValue }
  /// The string metadata of the weight file (safetensors `__metadata__`, GGUF string values).
  public var metadataStrings: [(key: String, value: String)] {
    checkpoint.gguf.map { $0.metadata.compactMap { entry in entry.value.stringValue.map { (entry.key, $0) } } }
      ?? checkpoint.metadata
  }

  /// The SHA-256 of the weight file (several files: their digests joined by "+"), as
  /// `sha256sum` prints it.
  public func weightDigest() throws(CheckpointError) -> String {
    var digests: [String] = []
    for file in checkpoint.files { digests.append(try file.sha256()) }
    return digests.joined(separator: "+")
  }

  /// Whether the file carries no alpha of its own (no `adapter_config.json`, no
  /// `adapter.lora.alpha`), so the alpha given to `load` is the one used.
  public var usesGivenAlpha: Bool {
    format == .gguf ? checkpoint.gguf?["adapter.lora.alpha"] == nil : config == nil && !ownScale
  }

  /// Loads the adapter at `path` (folder or file). `alpha` stands in for a missing config;
  /// `llamaHeads` says that a GGUF adapter's q/k `lora_b` rows are in llama.cpp's order (as
  /// llama.cpp's converter writes them), so they are read back into Hugging Face order.
  /// With `lenient`, modules that cannot be read are left out and listed in `problems`
  /// instead of failing the load (inspect shows every good module beside them). `model` is
  /// the base model's config where a format needs it (kohya SDXL sgm names: the UNet's
  /// `layers_per_block`; MLX-LM: `num_hidden_layers` to check `num_layers` against).
  public static func load(
    _ path: String, alpha: Double? = nil, llamaHeads: LlamaGGUF.Heads? = nil, lenient: Bool = false,
    model: BaseModelConfig? = nil
  ) throws(AdapterError) -> Adapter {
    let checkpoint = try AdapterError.wrap { () throws(CheckpointError) in try Checkpoint.open(path) }
    return try load(checkpoint, alpha: alpha, llamaHeads: llamaHeads, lenient: lenient, model: model)
  }

  /// The adapter an opened checkpoint holds (a caller that may show its header instead opens
  /// it once).
  public static func load(
    _ checkpoint: Checkpoint, alpha: Double? = nil, llamaHeads: LlamaGGUF.Heads? = nil, lenient: Bool = false,
    model: BaseModelConfig? = nil
  ) throws(AdapterError) -> Adapter {
    var adapter = try read(checkpoint, alpha: alpha, llamaHeads: llamaHeads, lenient: lenient, model: model)
    adapter.baseModel = model
    return adapter
  }

  private static func read(
    _ checkpoint: Checkpoint, alpha: Double?, llamaHeads: LlamaGGUF.Heads?, lenient: Bool, model: BaseModelConfig?
  ) throws(AdapterError) -> Adapter {
    let path = checkpoint.path
    if checkpoint.format == .gguf { return try loadGGUF(checkpoint, alpha: alpha, heads: llamaHeads, lenient: lenient) }
    // The other formats are told apart by their keys (and MLX also by its config).
    let family = try KeyFamily.detect(checkpoint)
    let mlxConfig = try MLXConfig.beside(checkpoint)
    switch family {
    case .kohya: return try KohyaReader.load(checkpoint, model: model, lenient: lenient)
    case .diffusersOld: return try DiffusersReader.load(checkpoint, lenient: lenient)
    case .mlx:
      return try MLXReader.load(checkpoint, config: mlxConfig, alpha: alpha, model: model, lenient: lenient)
    case .torchtune:
      return try TorchtuneReader.load(
        checkpoint, config: readConfig(of: checkpoint), alpha: alpha, heads: llamaHeads, lenient: lenient)
    case .peft where mlxConfig != nil:
      throw .badConfig(
        path: checkpoint.folder + "/adapter_config.json",
        message: "an MLX-LM config (lora_parameters) beside PEFT-named tensors (lora_A/lora_B): not one adapter")
    case .peft, nil: break
    }
    if mlxConfig != nil { throw .noAdapterTensors(path: path) }
    let config = try readConfig(of: checkpoint)
    if config == nil, family == .peft, DiffusersReader.isDiffusers(checkpoint) {
      return try DiffusersReader.load(checkpoint, lenient: lenient)
    }
    if let config, config.peftType.uppercased() != "LORA" {
      throw .unsupportedPEFTType(path: path, type: config.peftType)
    }
    return try loadPEFT(checkpoint, config: config, alpha: alpha, lenient: lenient)
  }

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

  /// Loads `path` when it holds a LoRA adapter; nil when it holds other tensors (a model).
  public static func loadIfAdapter(
    _ path: String, alpha: Double? = nil, llamaHeads: LlamaGGUF.Heads? = nil, model: BaseModelConfig? = nil
  ) throws(AdapterError) -> Adapter? {
    do {
      return try load(path, alpha: alpha, llamaHeads: llamaHeads, model: model)
    } catch {
      switch error {
      case .noAdapterTensors, .missingAlpha: return nil
      default: throw error
      }
    }
  }

  private static func loadPEFT(_ checkpoint: Checkpoint, config: AdapterConfig?, alpha: Double?, lenient: Bool)
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
      let moduleAlpha: Double
      let scale: Double
      if let config {
        moduleAlpha = config.rankAndAlpha(for: name).alpha
        scale = config.useRSLoRA ? moduleAlpha / Double(rank).squareRoot() : moduleAlpha / Double(rank)
      } else {
        guard let alpha else { throw .missingAlpha(path: path) }
        moduleAlpha = alpha
        scale = alpha / Double(rank)
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

  /// llama.cpp: `<base>.lora_a` `[r, in]` and `<base>.lora_b` `[out, r]`, one `adapter.lora.alpha`
  /// for the file; the scale is alpha / r (alpha 0 means scale 1, as llama.cpp applies it).
  private static func loadGGUF(_ checkpoint: Checkpoint, alpha: Double?, heads: LlamaGGUF.Heads?, lenient: Bool)
    throws(AdapterError) -> Adapter
  {
    let path = checkpoint.path
    let fileAlpha = checkpoint.gguf?["adapter.lora.alpha"]?.doubleValue ?? alpha ?? 0
    // A NaN or infinite alpha would scale every factor to NaN.
    guard fileAlpha.isFinite, fileAlpha >= 0 else {
      throw .badConfig(path: path, message: "adapter.lora.alpha is \(fileAlpha): not a finite number >= 0")
    }
    var pairs: [String: (a: Tensor?, b: Tensor?)] = [:]
    var full: [Tensor] = []
    for tensor in checkpoint.tensors {
      if tensor.name.hasSuffix(".lora_a") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].a = tensor
      } else if tensor.name.hasSuffix(".lora_b") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].b = tensor
      } else {
        full.append(tensor)
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (base, pair) in pairs.sorted(by: { $0.key < $1.key }) {
      let name = ModuleName.fromGGUF(base)
      if let problem = pairProblem(
        path: path, module: name, a: pair.a, b: pair.b, names: (base + ".lora_a", base + ".lora_b"))
      {
        guard lenient else { throw problem }
        problems.append(problem)
        continue
      }
      guard let a = pair.a, let b = pair.b else { continue }
      let rank = a.shape[0]
      modules.append(
        LoRAModule(
          name: name, kind: name.hasSuffix("embed_tokens") ? .embedding : .linear, a: a, b: b, rank: rank,
          alpha: fileAlpha,
          scale: fileAlpha == 0 ? 1 : fileAlpha / Double(rank), fanInFanOut: false, bias: nil, magnitude: nil))
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    modules.sort { $0.name < $1.name }
    var adapter = Adapter(
      path: path, format: .gguf, config: nil, checkpoint: checkpoint, modules: modules, fullTensors: full)
    adapter.problems = problems
    // q/k rows: as the file records them, else (another tool's llama LoRA) in llama.cpp's order,
    // which needs head counts: given, or resolved later (QKRowOrder.resolve), never guessed.
    let recorded =
      try AdapterError.wrap { () throws(CheckpointError) in
        try checkpoint.gguf.map { gguf throws(CheckpointError) in try QKRowOrder.recorded(in: gguf, path: path) } ?? nil
      }
    switch recorded {
    case let .some(.some(own)): return adapter.withRowOrder(own)
    case .some(nil): return adapter
    case nil:
      guard QKRowOrder.isPermuted(architecture: adapter.architecture ?? "llama", modules: modules.map(\.name)) else {
        return adapter
      }
      guard let heads else {
        adapter.pendingRowOrder = true
        return adapter
      }
      return adapter.withRowOrder(heads)
    }
  }

  /// The adapter with its q/k `lora_b` rows read from llama.cpp's order for these head counts.
  func withRowOrder(_ heads: LlamaGGUF.Heads) -> Adapter {
    var adapter = self
    adapter.modules = modules.map { module in
      var module = module
      module.bRowOrder = LlamaGGUF.rowOrder(for: module.name, shape: module.b.shape, heads: heads, inverse: true)
      return module
    }
    adapter.pendingRowOrder = false
    adapter.rowOrderHeads = heads
    return adapter
  }
}
