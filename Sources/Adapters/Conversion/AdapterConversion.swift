import Checkpoints

/// Moves one adapter between PEFT and llama.cpp GGUF LoRA without aggregating anything.
///
/// GGUF holds one alpha per file and applies `alpha / r` per tensor; PEFT holds `r`, `lora_alpha`,
/// rsLoRA and per-module patterns. GGUF -> PEFT is exact (rank and alpha patterns express every
/// module's scale); PEFT -> GGUF keeps the factors bit for bit when every module's scale is
/// `alpha / r` for one alpha, and otherwise folds the difference into `B` (said in `foldedScales`).
public enum AdapterConversion {
  /// A converted adapter: its tensors and the metadata or config its format needs.
  public struct Result: Sendable {
    /// The tensors to write.
    public let tensors: [OutputTensor]
    /// The GGUF metadata entries (empty for PEFT).
    public let ggufMetadata: [(key: String, value: GGUFValue)]
    /// The `adapter_config.json` to write (PEFT's; MLX-LM's for MLX; nil for GGUF, kohya, diffusers).
    public let peftConfig: JSON?
    /// Modules whose scale had to be folded into `B`.
    public let foldedScales: [String]
    /// The safetensors metadata of a kohya, diffusers or MLX output.
    public var metadata: [(key: String, value: String)] = []
  }

  /// To a llama.cpp GGUF LoRA: `<name>.lora_a` / `.lora_b` under llama.cpp's names, one
  /// `adapter.lora.alpha` for the file (modules of another scale get the ratio folded into `B`, listed
  /// in ``Result/foldedScales``), q/k `lora_b` rows in llama.cpp's order.
  /// - Parameters:
  ///   - adapter: the adapter, row order resolved.
  ///   - dtype: the output dtype; nil keeps each tensor's.
  ///   - heads: the head counts the q/k rows are written by; nil for the adapter's own (a llama adapter
  ///     without any is refused).
  /// - Returns: the tensors and the GGUF metadata, for `GGUFWriter`.
  /// - Throws: ``AdapterError``: `cannot-carry` for a `lora_B.bias`, `module-mismatch` for a module
  ///   with no llama.cpp name, `unknown-row-order` when a llama adapter's head counts are unknown.
  /// - Complexity: O(modules); factors are copied or converted when written (a folded or reordered `B`
  ///   is computed whole then, O(d r)).
  public static func toGGUF(_ adapter: Adapter, dtype: DType?, heads: LlamaGGUF.Heads? = nil) throws(AdapterError)
    -> Result
  {
    let alpha = adapter.config?.alpha ?? adapter.modules.first?.alpha ?? 1
    var tensors: [OutputTensor] = []
    var folded: [String] = []
    if let biased = adapter.modules.first(where: { $0.bias != nil }) {
      throw .cannotCarry(
        what: "\(adapter.path): lora_B.bias of \(biased.name)", format: "llama.cpp GGUF LoRA")
    }
    let architecture = adapter.architecture ?? "llama"
    let known = if let heads { heads } else { try QKRowOrder.heads(from: [adapter]) }
    let heads = try QKRowOrder.headsForWriting(
      architecture: architecture, modules: adapter.modules.map(\.name), heads: known, path: adapter.path)
    for module in adapter.modules {
      guard let base = ModuleName.toGGUF(module.name) else {
        throw .moduleMismatch(
          client: adapter.path, module: module.name, message: "no llama.cpp name is known for it")
      }
      let fileScale = alpha / Double(module.rank)
      let factor = module.scale / fileScale
      if abs(factor - 1) > 1e-12 { folded.append(module.name) }
      tensors.append(
        CheckpointConversion.convert(
          module.a, to: dtype ?? module.a.dtype, name: base + ".lora_a", shape: module.a.shape))
      let order = LlamaGGUF.rowOrder(for: module.name, shape: module.b.shape, heads: heads, inverse: false)
      tensors.append(
        bOutput(module, name: base + ".lora_b", dtype: dtype ?? module.b.dtype, factor: factor, order: order))
    }
    let metadata: [(key: String, value: GGUFValue)] =
      [
        ("general.architecture", .string(architecture)), ("general.type", .string("adapter")),
        ("adapter.type", .string("lora")), ("adapter.lora.alpha", .f32(Float(alpha))),
      ] + QKRowOrder.metadata(heads: heads)
    return Result(tensors: tensors, ggufMetadata: metadata, peftConfig: nil, foldedScales: folded)
  }

  /// To PEFT: `B` rows in Hugging Face order, each module's scale kept exactly through `r`,
  /// `lora_alpha`, `rank_pattern` and `alpha_pattern` (the most common alpha as `lora_alpha`).
  /// - Parameters:
  ///   - adapter: the adapter, row order resolved.
  ///   - dtype: the output dtype; nil keeps each tensor's.
  /// - Returns: the tensors and the `adapter_config.json` (a PEFT source's other keys kept), for
  ///   ``AdapterWriter/writePEFT(_:metadata:config:to:progress:in:)``.
  /// - Complexity: O(modules²) to find the most common alpha; factors are copied or converted when
  ///   written.
  public static func toPEFT(_ adapter: Adapter, dtype: DType?) -> Result {
    var tensors: [OutputTensor] = []
    for module in adapter.modules {
      let names = AdapterWriter.tensorNames(module.name, kind: module.kind, format: .peft)
      tensors.append(
        CheckpointConversion.convert(module.a, to: dtype ?? module.a.dtype, name: names.a, shape: module.a.shape))
      tensors.append(bOutput(module, name: names.b, dtype: dtype ?? module.b.dtype, factor: 1, order: nil))
      if let bias = module.bias {
        tensors.append(
          CheckpointConversion.convert(
            bias, to: dtype ?? bias.dtype, name: "base_model.model.\(module.name).lora_B.bias", shape: bias.shape))
      }
    }
    let ranks = adapter.modules.map(\.rank)
    let common = AdapterConfig.commonRank(ranks)
    // Every module keeps its scale exactly: alpha_m = r_m * scale_m without rsLoRA (llama.cpp's
    // alpha 0 is scale 1: alpha = r), the most common alpha as lora_alpha, the others as patterns.
    let alphas = adapter.modules.map { Double($0.rank) * $0.scale }
    let commonAlpha =
      alphas.max { a, b in alphas.filter { $0 == a }.count < alphas.filter { $0 == b }.count } ?? Double(common)
    let rankPattern = adapter.modules.filter { $0.rank != common }.map { ($0.name, JSON($0.rank)) }
    let alphaPattern = zip(adapter.modules, alphas).filter { $0.1 != commonAlpha }.map { ($0.0.name, JSON($0.1)) }
    let defaults: [(key: String, value: JSON)] = [
      ("peft_type", .string("LORA")), ("base_model_name_or_path", .null), ("bias", .string("none")),
      ("fan_in_fan_out", .bool(false)),
      ("lora_dropout", JSON(0.0)), ("modules_to_save", .null), ("task_type", .null), ("inference_mode", .bool(true)),
    ]
    // A PEFT source keeps its other keys (base model, task type, ...).
    let config = (adapter.config?.raw ?? .object(defaults))
      .setting("peft_type", to: .string("LORA")).setting("r", to: JSON(common)).setting(
        "lora_alpha", to: JSON(commonAlpha)
      )
      .setting("use_rslora", to: .bool(false)).setting("rank_pattern", to: .object(rankPattern))
      .setting("lora_bias", to: .bool(adapter.modules.contains { $0.bias != nil }))
      .setting("alpha_pattern", to: .object(alphaPattern)).setting(
        "target_modules", to: .array(adapter.modules.map { .string($0.name) }))
    return Result(tensors: tensors, ggufMetadata: [], peftConfig: config, foldedScales: [])
  }

  /// `B` in Hugging Face row order times `factor`, rows then placed by `order` (target row `i`
  /// is Hugging Face row `order[i]`); a byte copy when nothing changes.
  static func bOutput(
    _ module: LoRAModule, name: String, dtype: DType, factor: Double, order: [Int]?, shape: [Int]? = nil
  ) -> OutputTensor {
    if abs(factor - 1) <= 1e-12, order == nil, module.bRowOrder == nil {
      return CheckpointConversion.convert(module.b, to: dtype, name: name, shape: shape ?? module.b.shape)
    }
    return OutputTensor(
      name: name, dtype: dtype, shape: shape ?? module.b.shape,
      source: .compute { buffer in
        let hf = try module.bFloats()
        let width = module.b.shape[1]
        var values = [Float]()
        values.reserveCapacity(hf.count)
        for row in order ?? Array(0..<(module.b.shape.first ?? 0)) {
          for value in hf[(row * width)..<((row + 1) * width)] { values.append(Float(Double(value) * factor)) }
        }
        FloatConversion.narrow(values, to: dtype, into: buffer)
      })
  }

  /// To kohya-ss, diffusers or MLX-LM: the factors copied bit for bit (conv LoRAs 4-D again,
  /// MLX's transposed), each module's scale carried by kohya's `alpha = r * scale`, diffusers'
  /// `lora_alpha` and `alpha_pattern`, or MLX's one `scale` (modules of another scale get the
  /// ratio folded into `lora_b`, listed in `foldedScales`). What the format cannot hold is
  /// refused by name.
  /// - Parameters:
  ///   - adapter: the adapter, row order resolved.
  ///   - format: kohya, diffusers or mlx (a precondition).
  ///   - dtype: the output dtype; nil keeps each tensor's.
  /// - Returns: the tensors, metadata and (MLX) config, for ``ForeignWriter/write(_:format:to:in:)``.
  /// - Throws: ``AdapterError``: `cannot-carry` naming what the format cannot hold (a bias outside
  ///   diffusers, `modules_to_save`, an embedding, a module it has no name for), or a read error of a
  ///   factor MLX stores transposed.
  /// - Complexity: O(modules), plus O(r k) per module for MLX, whose `A` is transposed into memory
  ///   here; other factors are copied when written.
  public static func toForeign(_ adapter: Adapter, format: AdapterFormat, dtype: DType?) throws(AdapterError)
    -> Result
  {
    precondition(format.isForeign, "\(format) is not kohya, diffusers or mlx")
    try ForeignWriter.checkCarried(
      format: format, biased: adapter.modules.filter { $0.bias != nil }.map(\.name),
      fullTensors: adapter.fullTensors.map(\.name), where: adapter.path)
    let twoTextEncoders = adapter.modules.contains { $0.name.hasPrefix("text_encoder_2.") }
    let mlxScale = ForeignWriter.mostCommon(adapter.modules.map(\.scale)) ?? 1
    var tensors: [OutputTensor] = []
    var folded: [String] = []
    for module in adapter.modules {
      let layout = try ForeignWriter.layout(
        module.name, kind: module.kind, kernel: module.origin?.kernel, rank: module.rank, shape: module.updateShape,
        format: format, kohyaStem: module.origin?.format == .kohya ? module.origin?.stem : nil,
        layersPerBlock: module.origin?.layersPerBlock, twoTextEncoders: twoTextEncoders)
      let (aType, bType) = (dtype ?? module.a.dtype, dtype ?? module.b.dtype)
      let factor = format == .mlx ? module.scale / mlxScale : 1
      if abs(factor - 1) > 1e-12 { folded.append(module.name) }
      if layout.transposed {
        let a = try AdapterError.wrap { () throws(CheckpointError) in try module.a.transposedCopy(name: layout.a) }
        tensors.append(CheckpointConversion.convert(a, to: aType, name: layout.a, shape: layout.aShape))
        tensors.append(try transposedB(module, name: layout.b, dtype: bType, factor: factor))
      } else {
        tensors.append(CheckpointConversion.convert(module.a, to: aType, name: layout.a, shape: layout.aShape))
        tensors.append(bOutput(module, name: layout.b, dtype: bType, factor: 1, order: nil, shape: layout.bShape))
      }
      if let alpha = layout.alpha {
        tensors.append(OutputTensor(name: alpha, dtype: .f32, shape: [], values: [Float(alphaOf(module))]))
      }
      if format == .diffusers, let bias = module.bias {
        tensors.append(
          CheckpointConversion.convert(
            bias, to: dtype ?? bias.dtype, name: module.name + ".lora_B.bias", shape: bias.shape))
      }
    }
    var metadata: [(key: String, value: String)] = [
      ("format", format == .mlx ? "mlx" : "pt"), (ForeignWriter.scaleFoldedKey, folded.isEmpty ? "false" : "true"),
    ]
    var config: JSON?
    switch format {
    case .kohya:
      metadata += adapter.sourceFormat == .kohya ? adapter.formatMetadata : []
    case .diffusers:
      metadata.append(
        (
          DiffusersReader.metadataKey,
          ForeignWriter.diffusersMetadata(
            adapter.modules.map { (name: $0.name, rank: $0.rank, alpha: alphaOf($0)) },
            bias: adapter.modules.contains { $0.bias != nil })
        ))
    default:
      config = try ForeignWriter.mlxConfig(
        modules: adapter.modules.map(\.name), rank: adapter.modules.map(\.rank).max() ?? 1, scale: mlxScale,
        clientConfigs: [ForeignWriter.mlxClientConfig(adapter)], layerCount: adapter.baseModel?.layerCount,
        modelPath: adapter.baseModel?.path)
    }
    var result = Result(tensors: tensors, ggufMetadata: [], peftConfig: config, foldedScales: folded)
    result.metadata = metadata
    return result
  }

  /// The alpha that gives a module its scale as `alpha / r`: its own when that holds, else `r * scale`.
  static func alphaOf(_ module: LoRAModule) -> Double {
    module.alpha / Double(module.rank) == module.scale ? module.alpha : Double(module.rank) * module.scale
  }

  /// `B^T` `[r, out]` (MLX's `lora_b`), rows of `B` in Hugging Face order, times `factor`.
  static func transposedB(_ module: LoRAModule, name: String, dtype: DType, factor: Double) throws(AdapterError)
    -> OutputTensor
  {
    if abs(factor - 1) <= 1e-12, module.bRowOrder == nil {
      let b = try AdapterError.wrap { () throws(CheckpointError) in try module.b.transposedCopy(name: name) }
      return CheckpointConversion.convert(b, to: dtype, name: name, shape: b.shape)
    }
    let (d, r) = (module.b.shape[0], module.b.shape[1])
    return OutputTensor(
      name: name, dtype: dtype, shape: [r, d],
      source: .compute { buffer in
        let hf = try module.bFloats()
        var values = [Float](repeating: 0, count: d * r)
        for i in 0..<d {
          for j in 0..<r { values[j * d + i] = Float(Double(hf[i * r + j]) * factor) }
        }
        FloatConversion.narrow(values, to: dtype, into: buffer)
      })
  }
}
