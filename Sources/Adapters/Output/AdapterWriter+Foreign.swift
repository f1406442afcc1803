import Checkpoints

extension AdapterWriter {
  /// The scale each module's written config implies in `format`: the layout's, except that MLX
  /// has one scale for the file, so modules of differing scales are all folded (scale 1).
  static func foreignScales(_ plan: OutputLayout, format: AdapterFormat) -> [Double] {
    format == .mlx && Set(plan.scales).count > 1 ? plan.scales.map { _ in 1 } : plan.scales
  }

  /// A merge's tensors in kohya, diffusers or MLX layout (factors supplied once solved, kohya's
  /// alphas and diffusers' LoRA biases computed here); every module the format cannot hold is
  /// refused by name first.
  static func foreignTensors(_ merge: Merge, plan: OutputLayout, format: AdapterFormat, dtype: DType)
    throws(AdapterError) -> (tensors: [OutputTensor], modules: [ModuleTensors])
  {
    let set = merge.set
    let biased = set.moduleNames.filter { name in set.modules(named: name).contains { $0?.bias != nil } }
    try ForeignWriter.checkCarried(format: format, biased: biased, fullTensors: set.fullTensorNames, where: nil)
    let scales = foreignScales(plan, format: format)
    let twoTextEncoders = set.moduleNames.contains { $0.hasPrefix("text_encoder_2.") }
    var tensors: [OutputTensor] = []
    var modules: [ModuleTensors] = []
    let stems = ForeignWriter.kohyaStems(
      set.moduleNames.map { set.modules(named: $0).compactMap { $0?.origin } }, names: set.moduleNames)
    for (index, name) in set.moduleNames.enumerated() {
      let entries = set.modules(named: name).compactMap { $0 }
      let rank = plan.ranks[index]
      let layout = try ForeignWriter.layout(
        name, kind: plan.kinds[index], kernel: entries.compactMap { $0.origin?.kernel }.first, rank: rank,
        shape: plan.shapes[index], format: format, kohyaStem: stems[index]?.stem,
        layersPerBlock: stems[index]?.layersPerBlock, twoTextEncoders: twoTextEncoders)
      var encoding = ModuleTensors(
        names: (layout.a, layout.b), bFactor: 1 / scales[index], rowOrder: nil, dtype: dtype)
      encoding.transposed = layout.transposed
      modules.append(encoding)
      tensors.append(
        OutputTensor(name: layout.a, dtype: dtype, shape: layout.aShape, source: .supplied(.init(key: layout.a))))
      tensors.append(
        OutputTensor(name: layout.b, dtype: dtype, shape: layout.bShape, source: .supplied(.init(key: layout.b))))
      if let alpha = layout.alpha {
        tensors.append(OutputTensor(name: alpha, dtype: .f32, shape: [], values: [Float(Double(rank) * scales[index])]))
      }
      // diffusers (PEFT) carries lora_B.bias: linear, so every rule carries it exactly.
      if format == .diffusers, biased.contains(name) {
        let (d, scale) = (plan.shapes[index][0], scales[index])
        tensors.append(
          OutputTensor(
            name: name + ".lora_B.bias", dtype: dtype, shape: [d],
            source: .compute { buffer in
              write(
                try set.biasUpdate(name) ?? [Double](repeating: 0, count: d), scale: 1 / scale, into: buffer,
                dtype: dtype)
            }))
      }
    }
    return (tensors, modules)
  }

  /// The metadata of a merge's kohya, diffusers or MLX output (provenance, whether the scales
  /// were folded into `B`, kohya's agreed `ss_*` notes, diffusers' `lora_adapter_metadata`) and
  /// MLX's `adapter_config.json`.
  static func foreignMetadata(_ merge: Merge, plan: OutputLayout, format: AdapterFormat, provenance: Provenance)
    throws(AdapterError) -> (metadata: [(key: String, value: String)], mlxConfig: JSON?)
  {
    let set = merge.set
    let scales = foreignScales(plan, format: format)
    var metadata: [(key: String, value: String)] =
      [("format", format == .mlx ? "mlx" : "pt")] + provenance.metadata + [
        (ForeignWriter.scaleFoldedKey, plan.keepsClientConfig && scales == plan.scales ? "false" : "true")
      ]
    switch format {
    case .kohya:
      metadata += ForeignWriter.agreedKohyaMetadata(set.clients)
      return (metadata, nil)
    case .diffusers:
      let modules = zip(set.moduleNames, zip(plan.ranks, scales)).map { name, pair in
        (name: name, rank: pair.0, alpha: Double(pair.0) * pair.1)
      }
      metadata.append((DiffusersReader.metadataKey, ForeignWriter.diffusersMetadata(modules, bias: set.hasBias)))
      return (metadata, nil)
    default:
      let model = set.clients.lazy.compactMap(\.baseModel).first
      let config = try ForeignWriter.mlxConfig(
        modules: set.moduleNames, rank: plan.ranks.max() ?? 1, scale: scales.first ?? 1,
        clientConfigs: set.clients.map(ForeignWriter.mlxClientConfig), layerCount: model?.layerCount,
        modelPath: model?.path)
      return (metadata, config)
    }
  }
}
