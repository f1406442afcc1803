#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// One view over every checkpoint layout fedlora reads: a safetensors file, a sharded safetensors (or
/// PyTorch) folder or its index, a GGUF file, a PyTorch `torch.save` archive, or a folder holding one
/// of them (a PEFT adapter folder, a model folder).
///
/// Open one with ``open(_:)``. Only headers are read, and checked against the real file sizes; tensor
/// data stays mapped on disk and is read through ``Tensor/withBytes(_:_:)`` or ``Tensor/floats()`` when
/// needed.
///
/// ```swift
/// let base = try Checkpoint.open("models/llama-3.2-1b")
/// let q = base.tensor(named: "model.layers.0.self_attn.q_proj.weight")
/// ```
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

  /// The tensor called `name`.
  ///
  /// - Parameter name: the tensor's name in the checkpoint (a state-dict key, or a GGUF name).
  /// - Returns: the tensor, or nil when the checkpoint has none by that name.
  /// - Complexity: O(n) in the number of tensors (a linear search).
  public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }

  /// The folder holding the opened file (where config.json and tokenizer files live).
  public var folder: String { parentFolder(of: resolvedPath) }

  /// Opens `path`, deciding the layout by content (GGUF magic, zip signature, JSON index) and not only
  /// by name.
  ///
  /// A folder is resolved to its checkpoint file first (``resolve(_:)``).
  ///
  /// - Parameter path: a file, a folder holding one checkpoint, a sharded index, or a Hugging Face id
  ///   (`owner/name[@revision]`) in the local cache (nothing is downloaded).
  /// - Returns: the checkpoint, its headers parsed and checked; tensor data mapped, not read.
  /// - Throws: ``CheckpointError``: `not-found` or `not-cached` when nothing is at `path`, `io` when a
  ///   file cannot be opened or mapped, `unrecognized-format` for a folder without one checkpoint file,
  ///   and the readers' errors for a header that is malformed or claims more than the file holds
  ///   (`bad-magic`, `header-too-large`, `data-truncated`, `bad-index`, `unsafe-pickle`, ...).
  /// - Complexity: O(header bytes) for each file opened (every shard of a sharded checkpoint); a
  ///   PyTorch archive's pickle is interpreted in O(its size), and its deflated storages are inflated
  ///   into memory.
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
  ///
  /// In a folder: the first present of `model.safetensors.index.json`, `adapter_model.safetensors`,
  /// `model.safetensors`, `adapters.safetensors`; else the only `.safetensors`, `.gguf` or index file
  /// (an index wins); else a PyTorch file (`pytorch_model.bin.index.json`, `adapter_model.bin`,
  /// `pytorch_model.bin`, `adapter_model.pt`).
  ///
  /// - Parameter path: a file or folder.
  /// - Returns: `path` when it is no folder, else the path of the file chosen in it.
  /// - Throws: ``CheckpointError/unrecognizedFormat(path:reason:)`` for a folder with no checkpoint
  ///   file, or with several and none preferred.
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
  /// - Parameter path: any path.
  /// - Returns: true for a folder or a link to one.
  public static func isDirectory(_ path: String) -> Bool { fileType(path) == S_IFDIR }

  /// Whether `path` is a regular file (symlinks followed; false for a FIFO, a device or a folder).
  /// - Parameter path: any path.
  /// - Returns: true for a regular file or a link to one.
  public static func isFile(_ path: String) -> Bool { fileType(path) == S_IFREG }

  /// Whether anything (a file, a link, a FIFO) is at `path`.
  /// - Parameter path: any path.
  /// - Returns: true when an entry is there, even a dangling link.
  public static func exists(_ path: String) -> Bool { entryType(path) != nil }

  /// The names in a folder, sorted.
  /// - Parameter path: a folder.
  /// - Returns: the entry names (without `.` and `..`); empty when `path` cannot be listed.
  public static func listDirectory(_ path: String) -> [String] { directoryEntries(of: path) }

  private static func startsWithJSON(_ file: MappedFile) throws(CheckpointError) -> Bool {
    try file.withBytes(0..<file.size) { bytes in
      bytes.first { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 } == UInt8(ascii: "{")
    }
  }
}
