#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// One view over every checkpoint layout fedlora reads: a safetensors file, a sharded
/// safetensors folder or its index, a GGUF file, or a folder holding one of them (a PEFT
/// adapter folder, a model folder). Only headers are read; tensor data stays mapped on disk.
public struct Checkpoint: Sendable {

  /// The path the user gave.
  public let path: String
  /// The file that was opened (the index for sharded checkpoints).
  public let resolvedPath: String
  /// The layout `open` found, from the file's content and name.
  public let format: CheckpointFormat
  /// Every tensor, in its reader's order (safetensors: data offset; GGUF: header; PyTorch: state dict;
  /// sharded: name). Shapes are in PyTorch order.
  public let tensors: [Tensor]
  /// safetensors `__metadata__` (of the first shard for sharded checkpoints).
  public let metadata: [(key: String, value: String)]
  /// The parsed GGUF file, for GGUF checkpoints.
  public let gguf: GGUFFile?
  /// The files that hold tensor data.
  public let files: [MappedFile]

  /// The tensor called `name`, or nil when the checkpoint has none.
  public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

  /// The folder holding the opened file (where config.json and tokenizer files live).
  public var folder: String { parentFolder(of: resolvedPath) }

  /// Opens `path`, deciding the layout by content (GGUF magic, JSON index) and not only by name.
  /// `path` may also be a Hugging Face id (`owner/name[@revision]`) in the local cache.
  public static func open(_ path: String) throws(CheckpointError) -> Checkpoint {
    let resolved = try resolve(HubCache.snapshot(for: path) ?? path)
    let file = resolved.hasSuffix(".json") ? nil : try MappedFile(path: resolved)
    guard let file, try !startsWithJSON(file) else {
      let index = try ShardedIndex(path: resolved)
      return Checkpoint(
        path: path, resolvedPath: resolved,
        format: resolved.hasSuffix(ShardedIndex.pytorchFileName) ? .shardedPytorch : .shardedSafetensors,
        tensors: index.tensors,
        metadata: index.shards.first?.metadata ?? [], gguf: nil, files: index.shards.map(\.file))
    }
    let magic = file.size >= 4 ? try file.load(UInt32.self, at: 0) : 0
    if magic == ZipArchive.localSignature || resolved.hasSuffix(".bin") || resolved.hasSuffix(".pt")
      || resolved.hasSuffix(".pth")
    {
      let pytorch = try PyTorchFile(file: file)
      return Checkpoint(
        path: path, resolvedPath: resolved, format: .pytorch, tensors: pytorch.tensors, metadata: [], gguf: nil,
        files: [file])
    }
    if resolved.hasSuffix(".gguf") || magic == GGUFFile.magic {
      let gguf = try GGUFFile(file: file)
      return Checkpoint(
        path: path, resolvedPath: resolved, format: .gguf, tensors: gguf.tensors, metadata: [], gguf: gguf,
        files: [file])
    }
    let safetensors = try SafeTensorsFile(file: file)
    return Checkpoint(
      path: path, resolvedPath: resolved, format: .safetensors, tensors: safetensors.tensors,
      metadata: safetensors.metadata, gguf: nil, files: [file])
  }

  /// The file to open for `path`: the path itself, or the checkpoint file inside a folder.
  public static func resolve(_ path: String) throws(CheckpointError) -> String {
    guard isDirectory(path) else { return path }
    let entries = listDirectory(path)
    // MLX-LM's final `adapters.safetensors` beside its periodic `0000100_adapters.safetensors`.
    for preferred in [ShardedIndex.fileName, "adapter_model.safetensors", "model.safetensors", "adapters.safetensors"]
    where entries.contains(preferred) {
      return path + "/" + preferred
    }
    let candidates =
      entries.filter { $0.hasSuffix(".safetensors.index.json") } + entries.filter { $0.hasSuffix(".safetensors") }
      + entries.filter { $0.hasSuffix(".gguf") }
    if let only = candidates.first, candidates.count == 1 || only.hasSuffix(".index.json") {
      return path + "/" + only
    }
    // PyTorch's own files last: a folder with both holds the safetensors as the reference.
    for pickle in [ShardedIndex.pytorchFileName, "adapter_model.bin", "pytorch_model.bin", "adapter_model.pt"]
    where entries.contains(pickle) {
      return path + "/" + pickle
    }
    throw .unrecognizedFormat(
      path: path,
      reason: candidates.isEmpty
        ? "no .safetensors, .gguf or index.json file in the folder" : "several checkpoint files: name one")
  }

  /// Whether `path` is a folder (symlinks followed).
  public static func isDirectory(_ path: String) -> Bool { fileType(path) == S_IFDIR }

  /// Whether `path` is a regular file (symlinks followed; false for a FIFO, a device or a folder).
  public static func isFile(_ path: String) -> Bool { fileType(path) == S_IFREG }

  /// Whether anything (a file, a link, a FIFO) is at `path`.
  public static func exists(_ path: String) -> Bool { entryType(path) != nil }

  /// Names in a folder, sorted.
  public static func listDirectory(_ path: String) -> [String] { directoryEntries(of: path) }

  private static func startsWithJSON(_ file: MappedFile) throws(CheckpointError) -> Bool {
    try file.withBytes(0..<file.size) { bytes in
      bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 } == UInt8(ascii: "{")
    }
  }
}
