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
    /// The `adapter_config.json` to write (nil for GGUF).
    public let peftConfig: JSON?
    /// Modules whose scale had to be folded into `B`.
    public let foldedScales: [String]
  }

  /// `heads`: write q/k `lora_b` rows in llama.cpp's order, as its converter does.
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

  /// To PEFT: `B` rows in Hugging Face order, each module's scale kept through `r`, `lora_alpha` and patterns.
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
  static func bOutput(_ module: LoRAModule, name: String, dtype: DType, factor: Double, order: [Int]?) -> OutputTensor {
    if abs(factor - 1) <= 1e-12, order == nil, module.bRowOrder == nil {
      return CheckpointConversion.convert(module.b, to: dtype, name: name, shape: module.b.shape)
    }
    return OutputTensor(
      name: name, dtype: dtype, shape: module.b.shape,
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
}
