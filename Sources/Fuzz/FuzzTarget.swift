import Adapters
import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The parsers that read untrusted bytes, each fed one input the way fedlora meets it: as the
/// file it would be, in a scratch folder beside the fixed files it needs. An input may be
/// refused with any error; it must never trap, hang or take unbounded memory.
enum FuzzTarget: String, CaseIterable {
  case safetensors, gguf, json, sentencepiece, pytorch
  case tokenizerJSON = "tokenizer-json"
  case shardedIndex = "sharded-index"
  case adapterConfig = "adapter-config"
  case modulePattern = "module-pattern"
  case llamaConfig = "llama-config"

  /// Runs one input.
  func run(_ bytes: [UInt8], in scratch: Scratch) {
    switch self {
    case .safetensors, .gguf, .pytorch:
      let path = scratch.write(bytes, as: self == .gguf ? "x.gguf" : self == .pytorch ? "x.bin" : "x.safetensors")
      guard let checkpoint = try? Checkpoint.open(path) else { return }
      _ = CheckpointSummary(checkpoint)
      for tensor in checkpoint.tensors.prefix(64) where tensor.byteCount <= 1 << 20 { _ = try? TensorScan(tensor) }
      _ = try? CheckpointConversion.plan(
        checkpoint, to: self == .gguf ? .safetensors : .gguf, dtype: .f16, skipUnsupported: true)
    case .json:
      _ = try? JSON.parse(bytes, path: "fuzz")
    case .sentencepiece:
      _ = try? SentencePieceModel.read(scratch.write(bytes, as: "tokenizer.model"))
    case .tokenizerJSON:
      scratch.write(Array(#"{"model_type": "llama", "vocab_size": 512, "bos_token_id": 1}"#.utf8), as: "config.json")
      scratch.write(bytes, as: "tokenizer.json")
      _ = try? GGUFVocabulary.read(folder: scratch.folder, vocabularySize: 512)
    case .shardedIndex:
      scratch.write(Scratch.shard, as: "model-00001-of-00001.safetensors")
      _ = try? Checkpoint.open(scratch.write(bytes, as: ShardedIndex.fileName))
    case .adapterConfig:
      scratch.write(Scratch.adapter, as: "adapter_model.safetensors")
      scratch.write(bytes, as: "adapter_config.json")
      guard let adapter = try? Adapter.load(scratch.folder, lenient: true) else { return }
      _ = adapter.config.map { config in adapter.modules.map { config.rankAndAlpha(for: $0.name) } }
    case .modulePattern:
      let text = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
      guard let key = text.first, let pattern = try? ModulePattern(String(key)) else { return }
      for name in text.dropFirst().prefix(16) { _ = pattern.matches(String(name)) }
    case .llamaConfig:
      scratch.write(Scratch.shard, as: "model.safetensors")
      scratch.write(bytes, as: "config.json")
      guard let checkpoint = try? Checkpoint.open(scratch.folder + "/model.safetensors"),
        let plan = try? CheckpointConversion.plan(checkpoint, to: .gguf, dtype: nil, skipUnsupported: true)
      else { return }
      _ = try? LlamaGGUF.export(plan.tensors, folder: scratch.folder)
      _ = try? LlamaGGUF.heads(configAt: scratch.folder + "/config.json")
    }
  }
}

/// A scratch folder for one process's inputs (tmpfs when there is one).
final class Scratch {
  let folder: String

  init() {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    var template = Array("\(base)/fedlora-fuzz-XXXXXX".utf8CString)
    folder = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
  }

  /// Writes `bytes` as `name` in the folder and returns its path.
  @discardableResult
  func write(_ bytes: [UInt8], as name: String) -> String {
    let path = folder + "/" + name
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    // `pwrite`, not `write`: this method's name shadows it.
    bytes.withUnsafeBytes { _ = pwrite(fd, $0.baseAddress, $0.count, 0) }
    close(fd)
    return path
  }

  /// A valid one-tensor shard (`w` F32 [2, 2]) for the index and llama-config targets.
  static let shard: [UInt8] = {
    var header = Array(
      #"{"model.layers.0.self_attn.q_proj.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#.utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
      + [UInt8](repeating: 0, count: 16)
  }()

  /// A valid rank-1 PEFT adapter of two modules, for the adapter-config target.
  static let adapter: [UInt8] = {
    let names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj"]
    var entries: [String] = []
    var offset = 0
    for name in names {
      for part in ["lora_A", "lora_B"] {
        entries.append(
          #""base_model.model.\#(name).\#(part).weight":{"dtype":"F32","shape":[\#(part == "lora_A" ? "1,2" : "2,1")],"data_offsets":[\#(offset),\#(offset + 8)]}"#
        )
        offset += 8
      }
    }
    var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
      + [UInt8](repeating: 0x3f, count: offset)
  }()
}
