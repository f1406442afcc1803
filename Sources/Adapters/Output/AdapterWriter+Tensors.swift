import Checkpoints

// What a merged adapter holds: its tensors in order, and how each solved module becomes bytes.
extension AdapterWriter {
  /// How one module's solved factors become the bytes of its two tensors (in the output's dtype,
  /// B's scale and q/k row order as the format wants them).
  struct ModuleTensors: Sendable {
    let names: (a: String, b: String)
    let bFactor: Double
    let rowOrder: [Int]?
    let dtype: DType
    /// Stored transposed (MLX-LM's `lora_a` `[in, r]`, `lora_b` `[r, out]`).
    var transposed = false

    /// The bytes of `Ah` and `Bh`, keyed by tensor name.
    func encode(_ estimate: ModuleEstimate) -> [(key: String, bytes: [UInt8])] {
      if transposed {
        return [
          (names.a, bytes(estimate.a.transposed.values, scale: 1, dtype: dtype)),
          (names.b, bytes(estimate.b.transposed.values, scale: bFactor, dtype: dtype)),
        ]
      }
      return [
        (names.a, bytes(estimate.a.values, scale: 1, dtype: dtype)),
        (names.b, bytes((rowOrder.map(estimate.b.rows(in:)) ?? estimate.b).values, scale: bFactor, dtype: dtype)),
      ]
    }
  }

  /// The tensors a merge's output holds, in order (each module's factors supplied once solved,
  /// the rest computed by the writer); how each module's factors become bytes; the layout, the
  /// q/k row-order heads (GGUF) and the architecture they were laid out for.
  static func outputTensors(
    _ merge: Merge, format: AdapterFormat, path: String, dtype: DType?, llamaHeads: LlamaGGUF.Heads?
  ) throws(AdapterError) -> (
    tensors: [OutputTensor], modules: [ModuleTensors], plan: OutputLayout, rowHeads: LlamaGGUF.Heads?,
    architecture: String
  ) {
    let set = merge.set
    let outputType = dtype ?? set.outputDType.dtype
    let plan = OutputLayout(merge)
    let architecture = set.clients.compactMap(\.architecture).first ?? "llama"
    var rowHeads: LlamaGGUF.Heads?
    if format == .gguf {
      let known = if let llamaHeads { llamaHeads } else { try QKRowOrder.heads(from: set.clients) }
      rowHeads = try QKRowOrder.headsForWriting(
        architecture: architecture, modules: set.moduleNames, heads: known, path: path)
    }
    if format.isForeign {
      let (tensors, modules) = try foreignTensors(merge, plan: plan, format: format, dtype: outputType)
      return (tensors, modules, plan, nil, architecture)
    }
    var tensors: [OutputTensor] = []
    var modules: [ModuleTensors] = []
    for (index, module) in set.moduleNames.enumerated() {
      let names = tensorNames(module, kind: plan.kinds[index], format: format)
      let rank = plan.ranks[index]
      let k = plan.shapes[index][1]
      let d = plan.shapes[index][0]
      // GGUF applies alpha / r per tensor; fold what that does not express into B.
      let bFactor = format == .gguf ? Double(rank) / plan.ggufAlpha : 1 / plan.scales[index]
      let rowOrder = LlamaGGUF.rowOrder(for: module, shape: plan.shapes[index], heads: rowHeads, inverse: false)
      modules.append(ModuleTensors(names: names, bFactor: bFactor, rowOrder: rowOrder, dtype: outputType))
      tensors.append(
        OutputTensor(name: names.a, dtype: outputType, shape: [rank, k], source: .supplied(.init(key: names.a))))
      tensors.append(
        OutputTensor(name: names.b, dtype: outputType, shape: [d, rank], source: .supplied(.init(key: names.b))))
    }
    // lora_B.bias: the bias update is linear, so every rule carries it exactly (b = sum w s b_u / s).
    if set.hasBias {
      let modules = set.moduleNames.filter { name in set.modules(named: name).contains { $0?.bias != nil } }
      guard format != .gguf else {
        throw .cannotCarry(
          what: "lora_B.bias of \(modules[0]) (and \(modules.count - 1) more)", format: "llama.cpp GGUF LoRA")
      }
      for (index, module) in set.moduleNames.enumerated() where plan.kinds[index] == .linear {
        let (d, scale) = (plan.shapes[index][0], plan.scales[index])
        tensors.append(
          OutputTensor(
            name: "base_model.model.\(module).lora_B.bias", dtype: outputType, shape: [d],
            source: .compute { buffer in
              write(
                try set.biasUpdate(module) ?? [Double](repeating: 0, count: d), scale: 1 / scale, into: buffer,
                dtype: outputType)
            }))
      }
    }
    for name in set.fullTensorNames { tensors.append(try weightedAverage(name, set: set)) }
    return (tensors, modules, plan, rowHeads, architecture)
  }

  /// Output tensor names of a module's factors.
  static func tensorNames(_ module: String, kind: LoRAModule.Kind, format: AdapterFormat) -> (a: String, b: String) {
    if format == .gguf, let base = ModuleName.toGGUF(module) { return (base + ".lora_a", base + ".lora_b") }
    if kind == .embedding {
      return ("base_model.model.\(module).lora_embedding_A", "base_model.model.\(module).lora_embedding_B")
    }
    return ("base_model.model.\(module).lora_A.weight", "base_model.model.\(module).lora_B.weight")
  }

  static func write(_ values: [Double], scale: Double, into buffer: UnsafeMutableRawBufferPointer, dtype: DType) {
    let floats = values.map { Float($0 * scale) }
    FloatConversion.narrow(floats, to: dtype, into: buffer)
  }

  /// `values * scale` rounded once to `dtype`, as the bytes of a tensor.
  static func bytes(_ values: [Double], scale: Double, dtype: DType) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(dtype.byteCount(elements: UInt64(values.count)) ?? 0))
    out.withUnsafeMutableBytes { write(values, scale: scale, into: $0, dtype: dtype) }
    return out
  }

  /// A `modules_to_save` tensor as the weighted average of the clients' copies, in the first
  /// copy's dtype (float copies only).
  static func weightedAverage(_ name: String, set: ClientSet) throws(AdapterError) -> OutputTensor {
    let copies = set.clients.compactMap { client in client.fullTensors.first { $0.name == name } }
    guard let first = copies.first else {
      throw .notAdapted(module: name)
    }
    guard let unsupported = copies.first(where: { !$0.dtype.isPlainFloat }) else {
      // Rows at a time: an lm_head or embedding copy is hundreds of MB per client.
      let weights = set.weights
      let rowElements = first.elementCount / max(first.shape.first ?? 1, 1)
      return OutputTensor(
        name: name, dtype: first.dtype, shape: first.shape,
        source: .rows {
          { rows, buffer in
            let count = rows.count * rowElements
            var sum = [Double](repeating: 0, count: count)
            var values = [Float](repeating: 0, count: count)
            for (copy, weight) in zip(copies, weights) {
              let bytes = copy.dtype.block.bytes * rowElements
              try copy.withBytes((rows.lowerBound * bytes)..<(rows.upperBound * bytes)) { raw in
                values.withUnsafeMutableBufferPointer { Dequantize.widen(raw, dtype: copy.dtype, into: $0) }
              }
              for i in 0..<count { sum[i] += weight * Double(values[i]) }
            }
            write(sum, scale: 1, into: buffer, dtype: first.dtype)
          }
        })
    }
    throw .checkpoint(
      .unsupportedDType(
        path: unsupported.file.path, tensor: name, dtype: unsupported.dtype.rawValue,
        operation: "average (modules_to_save)"))
  }
}
