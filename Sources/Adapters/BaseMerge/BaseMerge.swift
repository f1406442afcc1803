import Checkpoints

/// Folds an aggregate into base weights: `W = W0 + Bh Ah` for every adapted weight (for `exact`,
/// `W0 + T`; for `fedex`, `W0 + T - Bh_avg Ah_avg`), fp32 accumulation (one SGEMM into the widened
/// `W0`) and one rounding to the output dtype. Other tensors are copied byte for byte. Each
/// adapted tensor is computed when it is written, so memory follows the largest tensor.
public enum BaseMerge {
  /// A merged base checkpoint, ready to write.
  public struct Plan: Sendable {
    /// Every base tensor in the base's order; adapted ones are supplied as their modules are solved.
    public let tensors: [OutputTensor]
    /// Quantised base tensors that had to be written in a float dtype instead.
    public let requantised: [String]
    /// By module index, how its solved update is folded into its base tensor.
    let folds: [Int: Fold]
  }

  /// How one solved module becomes the rows of its merged base tensor.
  struct Fold: Sendable {
    /// The supplied tensor's key (the base tensor's name).
    let key: String
    let tensor: Tensor
    let transposed: Bool
    /// llama.cpp's q/k row order of a llama GGUF base, applied to the update's rows.
    let rowOrder: [Int]?
    let dtype: DType

    /// The rows of `W0 + left @ right` for the update the method gives the base.
    func rows(_ update: (left: Matrix, right: Matrix)) -> TensorSink.RowFill {
      var left = update.left
      if let rowOrder { left = left.rows(in: rowOrder) }
      let update = LowRankUpdate(left: left, right: update.right, transposed: transposed)
      let (tensor, dtype) = (tensor, dtype)
      return { rows, buffer in try fold(tensor, rows: rows, update: update, into: buffer, dtype: dtype) }
    }
  }

  /// The output tensors for `base` with `merge`'s aggregate folded in: adapted weights supplied as
  /// their modules are solved, biases and `modules_to_save` copies computed, every other tensor copied
  /// byte for byte. ``MergeWriter`` writes the plan; call this to lay out a merged base of one's own.
  /// - Parameters:
  ///   - base: the base checkpoint (a llama GGUF base's q/k rows are handled in llama.cpp's order).
  ///   - merge: the planned merge.
  ///   - dtype: the dtype of adapted tensors; nil for each base tensor's own (F16 for quantised ones,
  ///     listed in ``Plan/requantised``).
  /// - Returns: the plan.
  /// - Throws: ``AdapterError``: `module-mismatch` when the base has no weight for a module,
  ///   `shape-mismatch` when its shape is not the update's, `no-base-bias` when a bias update has no
  ///   base bias to go into, `unsupported-dtype` for a base weight that is not numbers, and a bad head
  ///   count in a GGUF base.
  /// - Complexity: O(base tensors + modules) by name; no tensor data is read (that happens when the
  ///   plan is written).
  public static func plan(base: Checkpoint, merge: Merge, dtype: DType?) throws(AdapterError) -> Plan {
    let set = merge.set
    var targets: [String: Int] = [:]
    for (index, module) in set.moduleNames.enumerated() {
      let candidates = [module + ".weight", ModuleName.toGGUF(module)].compactMap { $0 }
      guard let name = candidates.first(where: { base.tensor(named: $0) != nil }) else {
        throw AdapterError.moduleMismatch(
          client: base.path, module: module,
          message: "no base weight \(candidates.joined(separator: " or ")) in the base checkpoint")
      }
      targets[name] = index
    }
    // lora_B.bias: the base's bias gets the exact bias update (fedex's adapter carries it).
    var biases: [String: Int] = [:]
    if set.hasBias, type(of: merge.method).foldsBiasIntoBase {
      for (index, module) in set.moduleNames.enumerated()
      where set.modules(named: module).contains(where: { $0?.bias != nil }) {
        let candidates = [
          module + ".bias", ModuleName.toGGUF(module).map { String($0.dropLast(".weight".count)) + ".bias" },
        ].compactMap { $0 }
        guard let name = candidates.first(where: { base.tensor(named: $0) != nil }) else {
          throw AdapterError.noBaseBias(path: base.path, module: module, tensor: candidates.joined(separator: " or "))
        }
        biases[name] = index
      }
    }
    // modules_to_save: the clients' own copies replace the base tensor (weighted average).
    var saved: [String: String] = [:]
    for name in set.fullTensorNames where !name.contains(".base_layer.") {
      let stripped = name.hasPrefix("base_model.model.") ? String(name.dropFirst("base_model.model.".count)) : name
      if base.tensor(named: stripped) != nil { saved[stripped] = name }
    }
    var tensors: [OutputTensor] = []
    var requantised: [String] = []
    var folds: [Int: Fold] = [:]
    // A llama GGUF base holds q/k rows in llama.cpp's order; adapters are in Hugging Face's.
    let heads = try AdapterError.wrap { () throws(CheckpointError) in try base.gguf.flatMap(LlamaGGUF.heads(gguf:)) }
    for tensor in base.tensors {
      if let adapterName = saved[tensor.name] {
        let average = try AdapterWriter.weightedAverage(adapterName, set: set)
        tensors.append(
          OutputTensor(name: tensor.name, dtype: average.dtype, shape: average.shape, source: average.source))
        continue
      }
      if let index = biases[tensor.name] {
        tensors.append(
          try biasFold(tensor, module: set.moduleNames[index], set: set, dtype: dtype, heads: heads, path: base.path))
        continue
      }
      guard let index = targets[tensor.name] else {
        tensors.append(OutputTensor(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, source: .copy(tensor)))
        continue
      }
      guard tensor.dtype.isComputable else {
        throw .checkpoint(
          .unsupportedDType(path: base.path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "merge into")
        )
      }
      let module = set.modules(named: set.moduleNames[index]).compactMap { $0 }[0]
      let transposed = module.kind == .embedding || module.fanInFanOut
      let expected = transposed ? [module.updateShape[1], module.updateShape[0]] : module.updateShape
      guard tensor.shape == expected else {
        throw AdapterError.shapeMismatch(
          client: base.path, module: module.name, expected: expected, found: tensor.shape)
      }
      let requested = dtype ?? tensor.dtype
      let outputType: DType = requested.isPlainFloat ? requested : .f16
      if !requested.isPlainFloat { requantised.append(tensor.name) }
      let rowOrder = LlamaGGUF.rowOrder(for: tensor.name, shape: tensor.shape, heads: heads, inverse: false)
      folds[index] = Fold(
        key: tensor.name, tensor: tensor, transposed: transposed, rowOrder: rowOrder, dtype: outputType)
      tensors.append(
        OutputTensor(
          name: tensor.name, dtype: outputType, shape: tensor.shape, source: .supplied(.init(key: tensor.name))))
    }
    return Plan(tensors: tensors, requantised: requantised, folds: folds)
  }

  /// `b0 + sum_u w_u s_u b_u` for a base bias (rows in llama.cpp's order for a llama GGUF's q/k),
  /// in fp64, rounded once.
  static func biasFold(
    _ tensor: Tensor, module: String, set: ClientSet, dtype: DType?, heads: LlamaGGUF.Heads?, path: String
  ) throws(AdapterError) -> OutputTensor {
    guard tensor.dtype.isPlainFloat, tensor.shape.count == 1 else {
      throw .checkpoint(
        .unsupportedDType(
          path: path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "add a LoRA bias to"))
    }
    let rows = tensor.shape[0]
    let outputType = dtype ?? tensor.dtype
    let order = LlamaGGUF.rowOrder(for: tensor.name, shape: tensor.shape, heads: heads, inverse: false)
    return OutputTensor(
      name: tensor.name, dtype: outputType, shape: tensor.shape,
      source: .compute { buffer in
        let base = try tensor.floats()
        let update = try set.biasUpdate(module) ?? []
        guard update.count == rows else {
          throw AdapterError.shapeMismatch(client: path, module: module, expected: [update.count], found: tensor.shape)
        }
        let values = (0..<rows).map { i in Float(Double(base[i]) + update[order?[i] ?? i]) }
        FloatConversion.narrow(values, to: outputType, into: buffer)
      })
  }

  /// Rows `rows` of `W0 + update`, accumulated in fp32 by SGEMM straight into the widened base
  /// rows, then rounded once into `buffer`; a slice of rows at a time, so the fp32 work stays small.
  static func fold(
    _ tensor: Tensor, rows: Range<Int>, update: LowRankUpdate, into buffer: UnsafeMutableRawBufferPointer, dtype: DType
  ) throws(CheckpointError) {
    let width = tensor.shape[1]
    let outRowBytes = width / dtype.block.elements * dtype.block.bytes
    let sliceRows = max(1, (1 << 20) / max(width, 1))
    try tensor.forEachWidenedSlice((rows.lowerBound * width)..<(rows.upperBound * width), slice: sliceRows * width) {
      slice, _, w in
      let (start, n) = (slice.lowerBound / width, slice.count / width)
      update.add(rows: start, count: n, to: w.baseAddress!)
      let at = (start - rows.lowerBound) * outRowBytes
      FloatConversion.narrow(
        UnsafeBufferPointer(w), to: dtype,
        into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<(at + n * outRowBytes)]))
    }
  }
}
