import Checkpoints

/// Writes adapters in other tools' own formats: kohya-ss (ComfyUI, AUTOMATIC1111, diffusers),
/// diffusers' `pytorch_lora_weights.safetensors` and MLX-LM's adapter folder. Each module's
/// update `scale * B A` is carried exactly: kohya by its `alpha` tensor (`alpha = r * scale`),
/// diffusers by the `lora_alpha` / `alpha_pattern` of `lora_adapter_metadata`, MLX by its one
/// absolute `lora_parameters.scale` (modules of another scale get the ratio folded into `lora_b`).
/// A module the format cannot hold (no name in it, a conv LoRA in MLX, an embedding, a LoRA
/// bias, `modules_to_save`) is refused by name before anything is written.
public enum ForeignWriter {
  /// The file diffusers' `save_lora_weights` writes (and a folder OUT holds).
  public static let diffusersFile = "pytorch_lora_weights.safetensors"
  /// The files of an MLX-LM adapter folder.
  public static let mlxFiles = ["adapters.safetensors", "adapter_config.json"]
  /// The metadata entry saying whether the modules' scales were folded into `B`.
  public static let scaleFoldedKey = "fedlora.scale_folded"

  /// The name of a format in messages.
  static func title(_ format: AdapterFormat) -> String {
    switch format {
    case .kohya: "kohya-ss LoRA"
    case .diffusers: "diffusers LoRA"
    case .mlx: "MLX-LM adapter"
    default: format.rawValue
    }
  }

  /// The files an output at `path` consists of (a folder's: all that writing one replaces in it).
  /// - Parameters:
  ///   - format: kohya, diffusers or mlx.
  ///   - path: the destination.
  /// - Returns: the file paths.
  public static func files(_ format: AdapterFormat, path: String) -> [String] {
    switch format {
    case .diffusers where !path.hasSuffix(".safetensors"): [path + "/" + diffusersFile]
    case .mlx: mlxFiles.map { path + "/" + $0 }
    default: [path]
    }
  }

  /// Whether an output at `path` is a folder for this format (diffusers without `.safetensors`, MLX
  /// always).
  /// - Parameters:
  ///   - format: kohya, diffusers or mlx.
  ///   - path: the destination.
  /// - Returns: whether it is a folder.
  public static func isFolder(_ format: AdapterFormat, path: String) -> Bool {
    format == .mlx || (format == .diffusers && !path.hasSuffix(".safetensors"))
  }

  /// How one module is stored: tensor names, stored shapes, kohya's alpha tensor, MLX's transpose.
  struct Layout: Sendable {
    let a: String
    let b: String
    let alpha: String?
    let aShape: [Int]
    let bShape: [Int]
    let transposed: Bool
  }

  /// The layout of module `name` (`kind`, conv `kernel`, `rank`, update `shape` `[d, k]`) in
  /// `format`; `kohyaStem` is the stem a kohya client stored it under (an sgm stem with the
  /// `layersPerBlock` it was read with); `twoTextEncoders`: SDXL's `text_encoder` is kohya's `lora_te1_`.
  static func layout(
    _ name: String, kind: LoRAModule.Kind, kernel: [Int]?, rank: Int, shape: [Int], format: AdapterFormat,
    kohyaStem: String?, layersPerBlock: Int? = nil, twoTextEncoders: Bool
  ) throws(AdapterError) -> Layout {
    let (d, k) = (shape[0], shape[1])
    func refuse(_ why: String) -> AdapterError {
      .cannotCarry(what: "module '\(name)' (\(why))", format: title(format))
    }
    // A conv LoRA: A is lora_down [r, in, kh, kw], B lora_up [out, r, 1, 1].
    let conv: (a: [Int], b: [Int])? = kernel.map { kernel in
      ([rank, k / max(kernel.reduce(1, *), 1)] + kernel, [d, rank, 1, 1])
    }
    switch format {
    case .kohya:
      guard kind == .linear else { throw refuse("an embedding: kohya-ss LoRAs adapt linear and conv layers") }
      let stem: String
      if let kohyaStem {
        stem = kohyaStem
      } else {
        stem = try builtStem(name, twoTextEncoders: twoTextEncoders, refuse: refuse)
      }
      // Read back, the stem must name this module again.
      let back = KohyaNames.moduleName(stem, layersPerBlock: layersPerBlock) ?? stem
      guard back == name else { throw refuse("its kohya name \(stem) reads back as '\(back)'") }
      return Layout(
        a: stem + ".lora_down.weight", b: stem + ".lora_up.weight", alpha: stem + ".alpha",
        aShape: conv?.a ?? [rank, k], bShape: conv?.b ?? [d, rank], transposed: false)
    case .diffusers:
      guard kind == .linear else { throw refuse("an embedding: diffusers LoRAs adapt linear and conv layers") }
      guard DiffusersReader.components.contains(where: name.hasPrefix) else {
        throw refuse("no diffusers component: its name starts with none of unet., transformer., text_encoder.")
      }
      return Layout(
        a: name + ".lora_A.weight", b: name + ".lora_B.weight", alpha: nil, aShape: conv?.a ?? [rank, k],
        bShape: conv?.b ?? [d, rank], transposed: false)
    case .mlx:
      guard conv == nil else {
        throw refuse("a conv LoRA with kernel \(kernel ?? []): MLX-LM's LoRA layers are linear")
      }
      guard kind == .linear || name.hasSuffix("embed_tokens") else {
        throw refuse("an embedding not named embed_tokens: MLX-LM's reader would take it for a linear layer")
      }
      return Layout(
        a: name + ".lora_a", b: name + ".lora_b", alpha: nil, aShape: [k, rank], bShape: [rank, d], transposed: true)
    default:
      preconditionFailure("\(format) is not a foreign format")
    }
  }

  /// The kohya stem each module is written under (nil: built from its name) and the
  /// `layers_per_block` of an sgm stem, from the kohya origins of its clients' modules. UNet
  /// modules keep sd-scripts' SDXL (sgm) names only when every client's UNet module has one
  /// (all came from sgm kohya clients, whose agreed `ss_base_model_version` the output keeps);
  /// otherwise every UNet module is written in diffusers' block naming (`lora_unet_down_blocks_...`),
  /// which reads back without a config, and never both: diffusers drops the sgm names of such a file.
  static func kohyaStems(_ origins: [[ModuleOrigin]], names: [String]) -> [(stem: String, layersPerBlock: Int?)?] {
    let kohya = origins.map { $0.filter { $0.format == .kohya } }
    let unet = names.indices.filter { names[$0].hasPrefix("unet.") }
    let sgm =
      !unet.isEmpty
      && unet.allSatisfy { index in
        !origins[index].isEmpty && origins[index].allSatisfy { $0.format == .kohya && KohyaNames.isSGM($0.stem) }
      }
    return names.indices.map { index in
      let isUNet = names[index].hasPrefix("unet.")
      let origin = kohya[index].first { !isUNet || KohyaNames.isSGM($0.stem) == sgm }
      return origin.map { ($0.stem, $0.layersPerBlock) }
    }
  }

  /// kohya's stem of a diffusers-named module: `unet.down_blocks.0...` -> `lora_unet_down_blocks_0_...`;
  /// a module that kept its kohya stem as its name is its own stem.
  private static func builtStem(_ name: String, twoTextEncoders: Bool, refuse: (String) -> AdapterError)
    throws(AdapterError) -> String
  {
    if KeyFamily.kohyaPrefixes.contains(where: name.hasPrefix) { return name }
    for (component, prefix) in [
      ("unet.", "lora_unet_"), ("text_encoder_2.", "lora_te2_"),
      ("text_encoder.", twoTextEncoders ? "lora_te1_" : "lora_te_"),
    ] where name.hasPrefix(component) {
      return prefix + String(name.dropFirst(component.count)).replacingAll(".", with: "_")
    }
    throw refuse(
      "no kohya-ss name: kohya names UNet and text-encoder modules (unet.*, text_encoder.*, text_encoder_2.*)")
  }

  /// The refusals every module-independent part of an output owes: LoRA biases (kohya, MLX)
  /// and `modules_to_save` tensors (all three).
  static func checkCarried(
    format: AdapterFormat, biased: [String], fullTensors: [String], where path: String?
  ) throws(AdapterError) {
    let path = path.map { $0 + ": " } ?? ""
    if let first = fullTensors.first {
      throw .cannotCarry(
        what:
          "\(path)full tensor '\(first)' (modules_to_save\(fullTensors.count > 1 ? ", and \(fullTensors.count - 1) more" : ""))",
        format: title(format))
    }
    if format != .diffusers, let first = biased.first {
      throw .cannotCarry(
        what: "\(path)lora_B.bias of '\(first)'\(biased.count > 1 ? " (and \(biased.count - 1) more)" : "")",
        format: title(format))
    }
  }

  /// diffusers' `lora_adapter_metadata`: one LoraConfig per component (`unet.r`,
  /// `unet.lora_alpha`, patterns for the modules of another rank or alpha, `target_modules`),
  /// as `save_lora_weights` packs them, so `load_lora_weights` gives every module its scale.
  static func diffusersMetadata(_ modules: [(name: String, rank: Int, alpha: Double)], bias: Bool) -> String {
    var entries: [(key: String, value: JSON)] = []
    for component in DiffusersReader.components {
      let own = modules.filter { $0.name.hasPrefix(component) }.map {
        (name: String($0.name.dropFirst(component.count)), rank: $0.rank, alpha: $0.alpha)
      }
      guard !own.isEmpty else { continue }
      let rank = AdapterConfig.commonRank(own.map(\.rank))
      let alpha = mostCommon(own.map(\.alpha)) ?? Double(rank)
      let prefix = component
      entries += [
        (prefix + "r", JSON(rank)), (prefix + "lora_alpha", JSON(alpha)),
        (prefix + "rank_pattern", .object(own.filter { $0.rank != rank }.map { ($0.name, JSON($0.rank)) })),
        (prefix + "alpha_pattern", .object(own.filter { $0.alpha != alpha }.map { ($0.name, JSON($0.alpha)) })),
        (prefix + "target_modules", .array(own.map { .string($0.name) })), (prefix + "use_rslora", .bool(false)),
        (prefix + "use_dora", .bool(false)), (prefix + "lora_bias", .bool(bias)),
      ]
    }
    return JSON.object(entries).compactText
  }

  /// The most common value (the first of equals).
  static func mostCommon(_ values: [Double]) -> Double? {
    var best: (value: Double, count: Int)?
    for value in values {
      let count = values.filter { $0 == value }.count
      if count > (best?.count ?? 0) { best = (value, count) }
    }
    return best?.value
  }

  /// MLX-LM's `adapter_config.json`: the first MLX client's (else a new one) with `rank`,
  /// `scale`, `num_layers` and `keys` set for the modules written. mlx_lm gives LoRA layers to the
  /// model's last `num_layers` layers (`model.layers[-max(num_layers, 0):]`) and to the `keys`
  /// paths in them (or from the model's root), and loads the file's tensors into those; a LoRA
  /// layer the file has no tensors for keeps its zero-initialised `lora_b` and adds nothing. So
  /// `num_layers` is, exactly: the model's layer count (`layerCount`, `--base-config`) minus the
  /// lowest layer written; else, when every client is an MLX adapter with a `num_layers`, the
  /// largest (each client's layers are its last `num_layers`, checked when read; any 0 or -1: -1);
  /// else -1, mlx_lm's "all layers". Never the highest index + 1, which is right only when the
  /// modules reach the model's last layer. `keys`: the clients' and every path written.
  static func mlxConfig(
    modules: [String], rank: Int, scale: Double, clientConfigs: [JSON?], layerCount: Int?, modelPath: String?
  ) throws(AdapterError) -> JSON {
    var keys: [String] = []
    var lowest: (index: Int, module: String)?
    for name in modules {
      guard let layer = MLXConfig.layer(of: name) else {
        if !keys.contains(name) { keys.append(name) }
        continue
      }
      if layer.index < lowest?.index ?? Int.max { lowest = (layer.index, name) }
      if let layerCount, layer.index >= layerCount {
        throw .cannotCarry(
          what:
            "module '\(name)' (in layer \(layer.index), but the model has \(layerCount) layers: num_hidden_layers in \(modelPath ?? "its config"))",
          format: title(.mlx))
      }
      if !keys.contains(layer.key) { keys.append(layer.key) }
    }
    let numLayers: Int
    let clientLayers = clientConfigs.map { $0?["num_layers"]?.intValue }
    if let layerCount, let lowest {
      numLayers = layerCount - lowest.index
    } else if !clientLayers.isEmpty, clientLayers.allSatisfy({ $0 != nil }) {
      let values = clientLayers.compactMap { $0 }
      numLayers = values.contains { $0 <= 0 } ? -1 : values.max() ?? -1
    } else {
      numLayers = -1
    }
    let first = clientConfigs.lazy.compactMap { $0 }.first
    let base =
      first
      ?? .object([
        ("fine_tune_type", .string("lora")), ("num_layers", JSON(numLayers)),
        ("lora_parameters", .object([("rank", JSON(rank)), ("scale", JSON(scale)), ("dropout", JSON(0.0))])),
      ])
    let given = (base["lora_parameters"]?["keys"]?.arrayValue ?? []).compactMap(\.stringValue)
    let allKeys = given + keys.sorted().filter { !given.contains($0) }
    let parameters = (base["lora_parameters"] ?? .object([]))
      .setting("rank", to: JSON(rank)).setting("scale", to: JSON(scale))
      .setting("keys", to: .array(allKeys.map { .string($0) }))
    return base.setting("fine_tune_type", to: .string("lora")).setting("num_layers", to: JSON(numLayers))
      .setting("lora_parameters", to: parameters)
  }

  /// The raw `adapter_config.json` of an MLX-LM client, when one is beside it.
  static func mlxClientConfig(_ adapter: Adapter) -> JSON? {
    guard adapter.sourceFormat == .mlx,
      let bytes = try? ModelFolder.contents(of: "adapter_config.json", in: adapter.checkpoint.folder)
    else { return nil }
    return try? JSON.parse(bytes, path: adapter.checkpoint.folder + "/adapter_config.json")
  }

  /// The `ss_*` metadata every kohya client agrees on (none when a client is not kohya), less
  /// `ss_network_dim` / `ss_network_alpha`, which the written ranks and alphas replace.
  static func agreedKohyaMetadata(_ clients: [Adapter]) -> [(key: String, value: String)] {
    guard let first = clients.first, clients.allSatisfy({ $0.sourceFormat == .kohya }) else { return [] }
    return first.formatMetadata.filter { entry in
      entry.key != "ss_network_dim" && entry.key != "ss_network_alpha"
        && clients.allSatisfy { client in client.formatMetadata.contains { $0 == entry } }
    }
  }

  /// Stages an output of `tensors` in `format` at `path` (a folder for MLX, and for diffusers
  /// unless `path` ends in `.safetensors`), and returns the sink of the supplied tensors.
  static func open(
    _ tensors: [OutputTensor], format: AdapterFormat, metadata: [(key: String, value: String)], mlxConfig: JSON?,
    to path: String, progress: ProgressHandler?, in transaction: OutputTransaction
  ) throws(AdapterError) -> TensorSink {
    if format == .mlx, path.hasSuffix(".safetensors") {
      throw .badOption(
        message: "an MLX-LM adapter is a folder (adapters.safetensors and adapter_config.json): '\(path)' names a file")
    }
    return try AdapterError.writing { () throws -> TensorSink in
      guard isFolder(format, path: path) else {
        return try SafeTensorsWriter.open(tensors, metadata: metadata, to: path, progress: progress, in: transaction)
      }
      var sink = TensorSink?.none
      try transaction.folder(path) { folder in
        let name = format == .mlx ? mlxFiles[0] : diffusersFile
        sink = try SafeTensorsWriter.open(tensors, metadata: metadata, named: name, in: folder, progress: progress)
        if let mlxConfig { try folder.file(mlxFiles[1], contents: Array(mlxConfig.prettyText.utf8)) }
      }
      guard let sink else { preconditionFailure("the folder body runs in every transaction") }
      return sink
    }
  }

  /// Writes a converted adapter (``AdapterConversion/toForeign(_:format:dtype:)``) at `path`: one
  /// safetensors file, or a folder for MLX, and for diffusers unless `path` ends in `.safetensors`.
  /// - Parameters:
  ///   - result: the converted adapter (no supplied tensors).
  ///   - format: kohya, diffusers or mlx.
  ///   - path: the destination.
  ///   - transaction: the run's outputs.
  /// - Throws: ``AdapterError``: `bad-option` for an MLX output named as a file, or a failed write.
  /// - Complexity: O(total bytes), as `SafeTensorsWriter`.
  public static func write(
    _ result: AdapterConversion.Result, format: AdapterFormat, to path: String, in transaction: OutputTransaction
  ) throws(AdapterError) {
    let sink = try open(
      result.tensors, format: format, metadata: result.metadata, mlxConfig: result.peftConfig, to: path,
      progress: nil, in: transaction)
    try AdapterError.writing { try sink.finish() }
  }
}
