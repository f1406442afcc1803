import Checkpoints

/// The naming families of LoRA tensor keys, told apart without a config: one file holds keys of
/// one family, and keys of two are refused by name (a tool that merged two formats into one
/// file, or a file fedlora would otherwise read half of).
enum KeyFamily: String {
  /// `lora_unet_*`, `lora_te*_*` (kohya-ss).
  case kohya
  /// `.lora_A.weight` / `.lora_B.weight` / `lora_embedding_*` (PEFT, and diffusers' PEFT-style files).
  case peft
  /// diffusers' older names: `.lora.down.weight`, `.lora_linear_layer.down.weight`, `.to_q_lora.down.weight`.
  case diffusersOld = "diffusers"
  /// `.lora_a` / `.lora_b` in a safetensors file (MLX-LM).
  case mlx
  /// `.lora_a.weight` / `.lora_b.weight` (torchtune's native checkpoints).
  case torchtune

  static let kohyaPrefixes = ["lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_te3_"]
  private static let diffusersOldSuffixes = [
    ".lora.down.weight", ".lora.up.weight", ".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight",
    "_lora.down.weight", "_lora.up.weight",
  ]

  /// The family of one tensor key; nil for keys of none (alphas, full tensors, a model's weights).
  static func of(_ name: String) -> KeyFamily? {
    if kohyaPrefixes.contains(where: name.hasPrefix) { return .kohya }
    if name.hasSuffix(".lora_a.weight") || name.hasSuffix(".lora_b.weight") { return .torchtune }
    if name.hasSuffix(".lora_a") || name.hasSuffix(".lora_b") { return .mlx }
    if diffusersOldSuffixes.contains(where: name.hasSuffix) { return .diffusersOld }
    if ModuleName.fromPEFT(name) != nil { return .peft }
    return nil
  }

  /// The family of a checkpoint's keys (nil when none is a LoRA key); keys of two families are
  /// an error naming one tensor of each.
  static func detect(_ checkpoint: Checkpoint) throws(AdapterError) -> KeyFamily? {
    var found: (family: KeyFamily, tensor: String)?
    for tensor in checkpoint.tensors {
      guard let family = of(tensor.name) else { continue }
      guard let first = found else {
        found = (family, tensor.name)
        continue
      }
      if first.family != family {
        throw .mixedFormats(
          path: checkpoint.path, first: first.tensor, firstFormat: first.family.rawValue, second: tensor.name,
          secondFormat: family.rawValue)
      }
    }
    return found?.family
  }
}
