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
    func doubles(_ values: [Float], scale: Double) -> [Double]? {
      // One branch-free pass (it vectorises): exponent bits all ones is NaN or Inf.
      var nonFinite: UInt32 = 0
      let out = [Double](unsafeUninitializedCapacity: values.count) { out, count in
        values.withUnsafeBufferPointer { source in
          for i in source.indices {
            nonFinite |= (source[i].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0
            out[i] = scale * Double(source[i])
          }
        }
        count = values.count
      }
      return nonFinite == 0 ? out : nil
    }
    defer { for tensor in [a, b] { tensor.file.done(with: tensor.offset..<(tensor.offset + tensor.byteCount)) } }
    guard let aValues = doubles(try a.floats(), scale: 1), let bValues = doubles(try bFloats(), scale: scale) else {
      return nil
    }
    return (
      Matrix(rows: rank, cols: a.shape[1], values: aValues), Matrix(rows: b.shape[0], cols: rank, values: bValues)
    )
  }
}
