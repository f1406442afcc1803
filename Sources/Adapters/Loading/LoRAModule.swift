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

  /// `B` widened to Float, rows in Hugging Face order.
  public func bFloats() throws(CheckpointError) -> [Float] {
    let stored = try b.floats()
    guard let order = bRowOrder else { return stored }
    let width = b.shape[1]
    return order.flatMap { stored[($0 * width)..<(($0 + 1) * width)] }
  }

  /// The update's shape `[d, k]`.
  public var updateShape: [Int] { [b.shape[0], a.shape[1]] }

  /// `A` and `scale * B` in fp64 (rows of `B` in Hugging Face order), widened once, finiteness
  /// checked in the same pass; nil when a value is NaN or Inf. The mapped pages are released:
  /// memory follows one module.
  public func widenedFactors() throws(CheckpointError) -> (a: Matrix, bs: Matrix)? {
    defer { for tensor in [a, b] { tensor.file.done(with: tensor.offset..<(tensor.offset + tensor.byteCount)) } }
    guard let aValues = try Self.doubles(a, scale: 1, rowOrder: nil),
      let bValues = try Self.doubles(b, scale: scale, rowOrder: bRowOrder)
    else { return nil }
    return (
      Matrix(rows: rank, cols: a.shape[1], values: aValues), Matrix(rows: b.shape[0], cols: rank, values: bValues)
    )
  }

  /// `scale * tensor` in fp64, row `i` from stored row `rowOrder[i]` when given, straight from
  /// the stored bytes (one pass, finiteness checked in it); nil when a value is NaN or Inf.
  private static func doubles(_ tensor: Tensor, scale: Double, rowOrder: [Int]?) throws(CheckpointError) -> [Double]? {
    guard tensor.dtype.isComputable else {
      throw .unsupportedDType(
        path: tensor.file.path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "convert to numbers")
    }
    let count = tensor.elementCount
    var finite = true
    let stored = try tensor.withBytes { raw in
      [Double](unsafeUninitializedCapacity: count) { out, initialized in
        if let source = raw.baseAddress, let target = out.baseAddress, count > 0 {
          finite = DoubleKernels.widen(source, dtype: tensor.dtype, count: count, scale: scale, into: target)
        }
        initialized = count
      }
    }
    guard finite else { return nil }
    guard let rowOrder else { return stored }
    let width = count / max(rowOrder.count, 1)
    return rowOrder.flatMap { stored[($0 * width)..<(($0 + 1) * width)] }
  }

}
