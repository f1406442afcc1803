import Checkpoints

/// A client's LoRA adapter, read from any layout fedlora knows (PEFT folder or bare safetensors,
/// llama.cpp GGUF, kohya-ss, diffusers, MLX-LM, torchtune, PyTorch `.bin`): its modules normalised to
/// one form, `B A` in PyTorch order with its scale, rows of `B` in Hugging Face order.
///
/// ```swift
/// let adapter = try Adapter.load("clients/a")
/// for module in adapter.modules { print(module.name, module.rank, module.scale) }
/// ```
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
  /// product of it may be formed until ``Checkpoints/QKRowOrder/resolve(_:heads:)`` gives them.
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

  /// The SHA-256 of the weight file (several files: their digests joined by "+"), as `sha256sum` prints
  /// it: what fedlora records of each client in a merge's provenance.
  /// - Returns: the digest in hex; empty for an adapter held in memory.
  /// - Throws: `CheckpointError.io` when a file cannot be read again or changed since
  ///   it was opened.
  /// - Complexity: O(bytes of the weight files), read once.
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
  /// instead of failing the load (inspect shows every good module beside them).
  ///
  /// - Parameters:
  ///   - path: an adapter folder or file, or a Hugging Face id in the local cache.
  ///   - alpha: the LoRA alpha of an adapter whose files carry none (a bare safetensors, a GGUF without
  ///     `adapter.lora.alpha`, torchtune).
  ///   - llamaHeads: the base model's head counts, for q/k rows stored in llama.cpp's order.
  ///   - lenient: leave unreadable modules out and list them in ``problems`` instead of throwing.
  ///   - model: the base model's config where a format needs it (kohya SDXL SGM names: the UNet's
  ///     `layers_per_block`; MLX-LM: `num_hidden_layers` to check `num_layers` against).
  /// - Returns: the adapter, modules sorted by name.
  /// - Throws: ``AdapterError``: `no-adapter-tensors`, `missing-alpha`, `bad-config`,
  ///   `unsupported-peft-type`, `unpaired-module`, `bad-factor-shape`, `unsupported-lora-variant`
  ///   (LoHa, LoKr, DoRA magnitudes...), `mixed-formats`, `bad-alpha`, `needs-base-config`, and
  ///   ``AdapterError/checkpoint(_:)`` for a file that cannot be opened (`not-found`, a malformed
  ///   header...).
  /// - Complexity: O(header bytes + tensors): headers and configs are read, factors stay mapped (MLX's,
  ///   stored transposed, are copied into memory: O(r (d + k)) per module).
  public static func load(
    _ path: String, alpha: Double? = nil, llamaHeads: LlamaGGUF.Heads? = nil, lenient: Bool = false,
    model: BaseModelConfig? = nil
  ) throws(AdapterError) -> Adapter {
    let checkpoint = try AdapterError.wrap { () throws(CheckpointError) in try Checkpoint.open(path) }
    return try load(checkpoint, alpha: alpha, llamaHeads: llamaHeads, lenient: lenient, model: model)
  }

  /// The adapter an opened checkpoint holds (a caller that may show its header instead opens it once).
  /// - Parameters:
  ///   - checkpoint: the opened checkpoint.
  ///   - alpha: the LoRA alpha of an adapter whose files carry none.
  ///   - llamaHeads: the base model's head counts, for q/k rows stored in llama.cpp's order.
  ///   - lenient: leave unreadable modules out and list them in ``problems`` instead of throwing.
  ///   - model: the base model's config where a format needs it.
  /// - Returns: the adapter.
  /// - Throws: as ``load(_:alpha:llamaHeads:lenient:model:)-(String,_,_,_,_)``.
  /// - Complexity: O(tensors), plus the config files read.
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

  /// Loads `path` when it holds a LoRA adapter.
  /// - Parameters:
  ///   - path: an adapter or model folder or file.
  ///   - alpha: the LoRA alpha of an adapter whose files carry none.
  ///   - llamaHeads: the base model's head counts, for q/k rows stored in llama.cpp's order.
  ///   - model: the base model's config where a format needs it, as for ``load(_:alpha:llamaHeads:lenient:model:)-(String,_,_,_,_)``.
  /// - Returns: the adapter; nil when `path` holds other tensors (a model) or a LoRA without an alpha.
  /// - Throws: as ``load(_:alpha:llamaHeads:lenient:model:)-(String,_,_,_,_)``, but for `no-adapter-tensors`
  ///   and `missing-alpha`.
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
