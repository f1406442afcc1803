/// The layout an adapter was read from: the formats fedlora also writes (``AdapterFormat``)
/// and those it reads (kohya-ss, diffusers, MLX-LM, torchtune). Every reader yields the same
/// ``LoRAModule``s (PyTorch orientation, Hugging Face q/k row order, PEFT's scale
/// `alpha / r`), so nothing after loading depends on it but the reports.
public enum SourceFormat: String, Sendable, CaseIterable {
  /// A PEFT folder (`adapter_config.json` beside the weights).
  case peft
  /// A bare PEFT-style safetensors file (fedlora's own carry their config in the metadata).
  case safetensors
  /// A llama.cpp GGUF LoRA.
  case gguf
  /// kohya-ss (sd-scripts, ComfyUI, AUTOMATIC1111): `lora_unet_*` / `lora_te*_*` keys with
  /// `lora_down` / `lora_up` / `alpha`.
  case kohya
  /// diffusers' `pytorch_lora_weights.safetensors`: `unet.` / `transformer.` / `text_encoder.`
  /// prefixes, PEFT-style or older `lora.down` / `lora_linear_layer` names.
  case diffusers
  /// MLX-LM's `adapters.safetensors` (+ `adapter_config.json` with `lora_parameters`): factors
  /// transposed against PEFT, an absolute scale.
  case mlx
  /// torchtune's native `adapter_model.pt` / `adapter_N.pt`: torchtune module names, q/k
  /// `lora_b` rows in its per-head order, no alpha in the file.
  case torchtune

  /// The output format the rest of fedlora treats such an adapter as.
  public var adapterFormat: AdapterFormat {
    switch self {
    case .peft: .peft
    case .gguf: .gguf
    default: .safetensors
    }
  }
}

/// Where a module was read from, kept beside it so a writer can give it back exactly in its
/// own format: the stored names, shapes and layout the reader normalised away.
public struct ModuleOrigin: Sendable, Equatable {
  /// The format of the file.
  public let format: SourceFormat
  /// The key stem in the file: `lora_unet_down_blocks_0_..._to_q` (kohya),
  /// `unet.down_blocks.0....to_q` (diffusers), `model.layers.0.self_attn.q_proj` (MLX),
  /// `layers.0.attn.q_proj` (torchtune).
  public let stem: String
  /// The stored name of `A` (`...lora_down.weight`, `...lora_a`, `...lora_A.weight`).
  public let aTensor: String
  /// The stored name of `B` (`...lora_up.weight`, `...lora_b`, `...lora_B.weight`).
  public let bTensor: String
  /// The stored alpha tensor (kohya, diffusers), when there is one.
  public let alphaTensor: String?
  /// The stored shape of `A`: 4-D for a conv LoRA, `[in, r]` for MLX.
  public let aShape: [Int]
  /// The stored shape of `B`: `[out, r, 1, 1]` for a conv LoRA, `[r, out]` for MLX.
  public let bShape: [Int]
  /// A conv LoRA's kernel `[kh, kw]`: `A` is `lora_down` `[r, in, kh, kw]` seen as
  /// `[r, in * kh * kw]`, `B` is `lora_up` `[out, r, 1, 1]` seen as `[out, r]`; nil for a linear layer.
  public let kernel: [Int]?
  /// The factors are stored transposed against PEFT (MLX): `A = lora_a^T`, `B = lora_b^T`.
  public let transposed: Bool
  /// The UNet's `layers_per_block` an sgm kohya stem (`lora_unet_input_blocks_4_1_...`) was
  /// mapped with; nil for other stems.
  public var layersPerBlock: Int? = nil

  /// An origin as a reader records it.
  /// - Parameters:
  ///   - format: the file's format.
  ///   - stem: the module's key stem in the file.
  ///   - aTensor: the stored name of `A`.
  ///   - bTensor: the stored name of `B`.
  ///   - alphaTensor: the stored alpha tensor, if any.
  ///   - aShape: the stored shape of `A`.
  ///   - bShape: the stored shape of `B`.
  ///   - kernel: a conv LoRA's kernel `[kh, kw]`; nil for a linear layer.
  ///   - transposed: whether the factors are stored transposed (MLX).
  public init(
    format: SourceFormat, stem: String, aTensor: String, bTensor: String, alphaTensor: String? = nil,
    aShape: [Int], bShape: [Int], kernel: [Int]? = nil, transposed: Bool = false
  ) {
    self.format = format
    self.stem = stem
    self.aTensor = aTensor
    self.bTensor = bTensor
    self.alphaTensor = alphaTensor
    self.aShape = aShape
    self.bShape = bShape
    self.kernel = kernel
    self.transposed = transposed
  }
}
