/// The checkpoint layouts fedlora reads.
public enum CheckpointFormat: String, Sendable {
  case safetensors
  case shardedSafetensors = "sharded-safetensors"
  case gguf
  /// `torch.save`'s zip of a pickle and its storages (`adapter_model.bin`, `pytorch_model.bin`).
  case pytorch
  /// transformers' `pytorch_model.bin.index.json` and its `.bin` shards.
  case shardedPytorch = "sharded-pytorch"
}
