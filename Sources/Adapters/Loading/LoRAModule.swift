import Checkpoints

/// One adapted weight of an adapter: the LoRA pair and its scale.
///
/// `a` is `[r, k]` and `b` is `[d, r]` in PyTorch order, whatever the file format, so the update
/// is `scale * b @ a` of shape `[d, k]` (for embeddings, PEFT's `lora_embedding_B @ lora_embedding_A`,
/// whose transpose is added to the embedding matrix).
public struct LoRAModule: Sendable {
  /// Whether the module adapts a linear layer or an embedding.
  public enum Kind: String, Sendable { case linear, embedding }

  /// The module's name in Hugging Face form, without PEFT's `base_model.model.` prefix.
  public let name: String
  /// Linear module or embedding.
  public let kind: Kind
  /// `A`, `[r, k]`, as stored.
  public let a: Tensor
  /// `B`, `[d, r]`, as stored (see ``bRowOrder`` for its rows).
  public let b: Tensor
  /// `r`, from the tensors' shapes.
  public let rank: Int
  /// The module's alpha: the config's (after `alpha_pattern`), the GGUF file's, or the one given to `load`.
  public let alpha: Double
  /// `s`: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA (1 for a GGUF alpha of 0).
  public let scale: Double
  /// The base weight is stored `[in, out]` (GPT-2 Conv1D): the update applies transposed.
  public let fanInFanOut: Bool
  /// `lora_B.bias`, when the adapter has one (PEFT's `lora_bias`).
  public let bias: Tensor?
  /// DoRA's magnitude vector: such a module is not `W + sBA`.
  public let magnitude: Tensor?
  /// For llama.cpp's q/k row order: Hugging Face row `i` of `B` is stored row `bRowOrder[i]`.
  public var bRowOrder: [Int]? = nil
  /// The rank the config gives the module (`r` or `rank_pattern`), when it is not the tensors'.
  public var configRank: Int? = nil
  /// Where it was read from, for the formats whose layout the reader normalised (kohya,
  /// diffusers, MLX, torchtune): nil for PEFT and GGUF modules.
  public var origin: ModuleOrigin? = nil

  /// `B` widened to `Float`, rows in Hugging Face order (not scaled).
  /// - Returns: `d * r` values, row-major.
  /// - Throws: `CheckpointError`: `unsupported-dtype` for a `B` that is not numbers, `io` when its
  ///   file cannot be read again.
  /// - Complexity: O(d r) time and memory.
  public func bFloats() throws(CheckpointError) -> [Float] {
    let stored = try b.floats()
    guard bRowOrder != nil else { return stored }
    var rows = [Float](repeating: 0, count: stored.count)
    stored.withUnsafeBufferPointer { from in
      rows.withUnsafeMutableBufferPointer { into in bRowsInHuggingFaceOrder(from: from, into: into, stride: rank) }
    }
    return rows
  }

  /// Copies the `d` stored rows of `B` (`r` values each, in `from`) into `into` in Hugging Face
  /// order, row `i` at `i * stride`: llama.cpp's q/k order undone, the one place it is (the
  /// streamed sums scatter with ``bStoredRowTargets``, its inverse).
  func bRowsInHuggingFaceOrder<T>(
    from: UnsafeBufferPointer<T>, into: UnsafeMutableBufferPointer<T>, stride: Int
  ) {
    let (d, r) = (b.shape[0], rank)
    precondition(
      from.count >= d * r && stride >= r && into.count >= (d - 1) * stride + r, "\(name): rows out of bounds")
    for row in 0..<d {
      let source = bRowOrder?[row] ?? row
      _ = UnsafeMutableBufferPointer(rebasing: into[(row * stride)..<(row * stride + r)])
        .update(fromContentsOf: from[(source * r)..<(source * r + r)])
    }
  }

  /// For each stored row of `B`, its Hugging Face row (the inverse of ``bRowOrder``); nil when
  /// the rows are stored in Hugging Face order.
  var bStoredRowTargets: [Int]? {
    bRowOrder.map { order in
      var inverse = [Int](repeating: 0, count: order.count)
      for (row, stored) in order.enumerated() { inverse[stored] = row }
      return inverse
    }
  }

  /// The update's shape `[d, k]`.
  public var updateShape: [Int] { [b.shape[0], a.shape[1]] }

  /// `A` and `scale * B` in fp64 (rows of `B` in Hugging Face order), widened once, finiteness
  /// checked in the same pass; nil when a value is NaN or Inf. The mapped pages are released:
  /// memory follows one module.
  /// - Returns: `A` `[r, k]` and `scale * B` `[d, r]`; nil when a value is not finite.
  /// - Throws: `CheckpointError`: `unsupported-dtype` for a factor that is not numbers, `io` when a
  ///   file cannot be read again.
  /// - Complexity: O(r (d + k)) time and memory.
  public func widenedFactors() throws(CheckpointError) -> (a: Matrix, bs: Matrix)? {
    var a = Matrix(zeros: rank, self.a.shape[1])
    var bs = Matrix(zeros: b.shape[0], rank)
    let finite = try a.values.withUnsafeMutableBufferPointer { a throws(CheckpointError) in
      try bs.values.withUnsafeMutableBufferPointer { b throws(CheckpointError) in
        try widen(intoA: a, b: b, bStride: rank)
      }
    }
    return finite ? (a, bs) : nil
  }

  /// Widens `A` into `aBuffer` (`r` rows of `k`, one after the other) and `scale * B` into
  /// `bBuffer` (row `i`, in Hugging Face order, at `i * bStride`) straight from the stored bytes,
  /// checking finiteness in the same pass; false when a value is NaN or Inf. The mapped pages are
  /// released. The buffers must hold what is written (a precondition): `aBuffer` at least `r * k`
  /// values, `bBuffer` at least `(d - 1) * bStride + r`, with `bStride >= r`.
  package func widen(
    intoA aBuffer: UnsafeMutableBufferPointer<Double>, b bBuffer: UnsafeMutableBufferPointer<Double>, bStride: Int
  ) throws(CheckpointError) -> Bool {
    let (d, k) = (self.b.shape[0], self.a.shape[1])
    precondition(aBuffer.count >= rank * k, "\(name): A needs \(rank * k) values, the buffer holds \(aBuffer.count)")
    precondition(
      bStride >= rank && bBuffer.count >= (d - 1) * bStride + rank,
      "\(name): B needs \(d) rows of \(rank) at stride \(bStride), the buffer holds \(bBuffer.count)")
    let (a, b) = (aBuffer.baseAddress!, bBuffer.baseAddress!)
    for tensor in [self.a, self.b] where !tensor.dtype.isComputable {
      throw .unsupportedDType(
        path: tensor.file.path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "convert to numbers")
    }
    defer {
      for tensor in [self.a, self.b] { tensor.file.done(with: tensor.offset..<(tensor.offset + tensor.byteCount)) }
    }
    let finiteA = try self.a.withBytes { raw in
      DoubleKernels.widen(raw.baseAddress!, dtype: self.a.dtype, count: rank * k, scale: 1, into: a)
    }
    let finiteB = try self.b.withBytes { raw in
      guard bRowOrder != nil else {
        return DoubleKernels.widen(
          raw.baseAddress!, dtype: self.b.dtype, rows: d, cols: rank, scale: scale, into: b, stride: bStride)
      }
      let stored = UnsafeMutableBufferPointer<Double>.allocate(capacity: d * rank)
      defer { stored.deallocate() }
      let finite = DoubleKernels.widen(
        raw.baseAddress!, dtype: self.b.dtype, count: d * rank, scale: scale, into: stored.baseAddress!)
      bRowsInHuggingFaceOrder(from: UnsafeBufferPointer(stored), into: bBuffer, stride: bStride)
      return finite
    }
    return finiteA && finiteB
  }
}
