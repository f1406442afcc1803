/// The layouts a LoRA adapter is read from and written as.
public enum AdapterFormat: String, Sendable, CaseIterable {
  /// A PEFT folder: `adapter_model.safetensors` (or `.bin`) beside `adapter_config.json`.
  case peft
  /// A bare safetensors file; fedlora's own carry their config in the file's metadata.
  case safetensors
  /// A llama.cpp GGUF LoRA (`general.type = adapter`).
  case gguf
  /// A kohya-ss LoRA (ComfyUI, AUTOMATIC1111, diffusers' `load_lora_weights`): one safetensors
  /// file of `lora_unet_*` / `lora_te*_*` `lora_down` / `lora_up` / `alpha` tensors (written only).
  case kohya
  /// diffusers' `pytorch_lora_weights.safetensors` (`load_lora_weights`): PEFT-style keys under
  /// `unet.` / `text_encoder.`..., the LoRA configs in `lora_adapter_metadata` (written only).
  case diffusers
  /// An MLX-LM adapter folder (`mlx_lm --adapter-path`): `adapters.safetensors` (`lora_a`
  /// `[in, r]`, `lora_b` `[r, out]`) and `adapter_config.json` (written only).
  case mlx

  /// Whether it is the format of another tool's loader (kohya, diffusers, MLX), written by
  /// ``ForeignWriter``; adapters of these formats are read with ``SourceFormat``.
  public var isForeign: Bool { self == .kohya || self == .diffusers || self == .mlx }
}
