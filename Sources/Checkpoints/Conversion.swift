/// Plans the tensors of a checkpoint written in another format or dtype (what `fedlora convert`
/// writes): a plan of ``OutputTensor``s for ``SafeTensorsWriter`` or ``GGUFWriter``, each converted a
/// slice at a time when written.
public enum CheckpointConversion {
  /// The format a conversion writes.
  public enum Target: Sendable { case safetensors, gguf }

  /// What a conversion writes, and what it had to leave out.
  public struct Plan: Sendable {
    /// The tensors to write, in the input's order.
    public var tensors: [OutputTensor]
    /// Tensors left out under `skipUnsupported` because the target cannot hold their dtype.
    public var skipped: [(tensor: String, dtype: DType)]
  }

  /// The output tensors for `checkpoint` written as `target`.
  ///
  /// Float tensors are rounded once to `dtype` when given (quantised ones dequantised first; Q8_0 takes
  /// 2-D weights whose rows are whole blocks only, as ggml's converter does); other tensors are copied
  /// byte for byte. Quantised tensors bound for safetensors become F32 (exact: F32 holds every value).
  ///
  /// - Parameters:
  ///   - checkpoint: the input.
  ///   - target: safetensors or GGUF.
  ///   - dtype: the dtype of float tensors in the output; nil keeps each tensor's.
  ///   - skipUnsupported: leave out (and list in ``Plan/skipped``) a tensor the target cannot hold,
  ///     instead of failing.
  /// - Returns: the tensors to write, in the input's order; nothing is read yet.
  /// - Throws: ``CheckpointError/formatCannotHold(path:tensor:dtype:format:convertible:)`` for a tensor
  ///   the target cannot hold, unless `skipUnsupported`.
  /// - Complexity: O(n) in the number of tensors; no data is read (that happens as the plan is
  ///   written).
  public static func plan(_ checkpoint: Checkpoint, to target: Target, dtype: DType?, skipUnsupported: Bool)
    throws(CheckpointError) -> Plan
  {
    var plan = Plan(tensors: [], skipped: [])
    for tensor in checkpoint.tensors {
      var outputType = tensor.dtype
      // Q8_0 takes 2-D weights whose rows are whole blocks, as ggml's converter does; norms,
      // biases and odd shapes keep their dtype.
      let quantisable = tensor.shape.count == 2 && (tensor.shape.last ?? 0) % 32 == 0
      if let dtype, tensor.dtype.isComputable, dtype != .q8_0 || quantisable {
        outputType = dtype
      } else if target == .safetensors, tensor.dtype.bitsPerElement == nil, tensor.dtype.isComputable {
        outputType = .f32
      }
      let holds = target == .gguf ? outputType.ggmlType != nil : outputType.bitsPerElement != nil
      guard holds else {
        if skipUnsupported {
          plan.skipped.append((tensor.name, tensor.dtype))
          continue
        }
        throw .formatCannotHold(
          path: checkpoint.path, tensor: tensor.name, dtype: tensor.dtype.rawValue, format: "\(target)",
          convertible: tensor.dtype.isComputable)
      }
      plan.tensors.append(convert(tensor, to: outputType, name: tensor.name, shape: tensor.shape))
    }
    return plan
  }

  /// `tensor` as an output of `dtype`: a byte copy when the dtype is unchanged, else widened to `Float`
  /// and rounded once (or quantised to Q8_0), rows at a time as the writer asks for them.
  ///
  /// - Parameters:
  ///   - tensor: the input tensor.
  ///   - dtype: the output dtype.
  ///   - name: the output tensor's name.
  ///   - shape: the output shape (the same element count as `tensor`'s).
  /// - Returns: the output tensor; it reads `tensor` only when written.
  /// - Complexity: when written, O(elements) time; memory O(one slice) beyond the writer's buffer.
  public static func convert(_ tensor: Tensor, to dtype: DType, name: String, shape: [Int]) -> OutputTensor {
    if dtype == tensor.dtype { return OutputTensor(name: name, dtype: dtype, shape: shape, source: .copy(tensor)) }
    let rowElements = tensor.elementCount / max(shape.first ?? 1, 1)
    guard rowElements % tensor.dtype.block.elements == 0, rowElements % dtype.block.elements == 0 else {
      // Rows that split a quantisation block (1-D quantised tensors): converted whole.
      return OutputTensor(
        name: name, dtype: dtype, shape: shape,
        source: .compute { buffer in
          try streamConvert(tensor, elements: 0..<tensor.elementCount, to: dtype, into: buffer)
        })
    }
    return OutputTensor(
      name: name, dtype: dtype, shape: shape,
      source: .rows {
        { rows, buffer in
          try streamConvert(
            tensor, elements: (rows.lowerBound * rowElements)..<(rows.upperBound * rowElements), to: dtype, into: buffer
          )
        }
      })
  }

  /// Elements `elements` of `tensor` (block-aligned), converted into `buffer` a slice at a time.
  static func streamConvert(
    _ tensor: Tensor, elements: Range<Int>, to dtype: DType, into buffer: UnsafeMutableRawBufferPointer
  ) throws(CheckpointError) {
    guard let output = buffer.baseAddress else { return }
    let (outElements, outBytes) = dtype.block
    try tensor.forEachWidenedSlice(elements) { slice, _, values in
      let target = output + (slice.lowerBound - elements.lowerBound) / outElements * outBytes
      if dtype == .q8_0 {
        Dequantize.quantizeQ8_0(values.baseAddress!, count: values.count, into: target)
      } else {
        FloatConversion.narrow(values.baseAddress!, count: values.count, to: dtype, into: target)
      }
    }
  }
}
