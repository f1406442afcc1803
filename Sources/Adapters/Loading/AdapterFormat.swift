/// The layouts a LoRA adapter is read from and written as.
public enum AdapterFormat: String, Sendable, CaseIterable {
  /// A PEFT folder: `adapter_model.safetensors` (or `.bin`) beside `adapter_config.json`.
  case peft
  /// A bare safetensors file; fedlora's own carry their config in the file's metadata.
  case safetensors
  /// A llama.cpp GGUF LoRA (`general.type = adapter`).
  case gguf
}
