/// Writes safetensors files and sharded safetensors folders.
public enum SafeTensorsWriter {
  /// The header and data layout of one file: tensors ordered so that each is aligned to its
  /// element size (widest first, then by name), header padded with spaces to a multiple of 8.
  struct Layout {
    let tensors: [OutputTensor]
    let header: [UInt8]
    let offsets: [Int]
    let totalSize: Int

    init(_ tensors: [OutputTensor], metadata: [(key: String, value: String)]) {
      let ordered = tensors.sorted {
        let (a, b) = ($0.dtype.bitsPerElement ?? 8, $1.dtype.bitsPerElement ?? 8)
        return a != b ? a > b : $0.name < $1.name
      }
      var entries: [(key: String, value: JSON)] = []
      var meta = metadata
      if !meta.contains(where: { $0.key == "format" }) { meta.insert(("format", "pt"), at: 0) }
      entries.append(("__metadata__", .object(meta.map { ($0.key, JSON.string($0.value)) })))
      var position = 0
      var relative: [Int] = []
      for tensor in ordered {
        relative.append(position)
        entries.append(
          (
            tensor.name,
            .object([
              ("dtype", .string(tensor.dtype.rawValue)),
              ("shape", .array(tensor.shape.map { JSON($0) })),
              ("data_offsets", .array([JSON(position), JSON(position + tensor.byteCount)])),
            ])
          ))
        position += tensor.byteCount
      }
      var header = Array(JSON.object(entries).compactText.utf8)
      while (8 + header.count) % 8 != 0 { header.append(0x20) }
      self.tensors = ordered
      self.header = header
      offsets = relative.map { $0 + 8 + header.count }
      totalSize = 8 + header.count + position
    }
  }

  /// Writes one safetensors file at `path`, through a temporary renamed into place when `transaction`
  /// (or a transaction of its own) commits.
  ///
  /// Every tensor's dtype must be one safetensors names; no tensor may be supplied (see
  /// ``open(_:metadata:to:progress:in:)`` for that).
  ///
  /// - Parameters:
  ///   - tensors: the file's tensors, in any order (the file orders them widest dtype first, then by
  ///     name).
  ///   - metadata: the `__metadata__` entries (`format: pt` first unless given).
  ///   - path: the destination file.
  ///   - progress: called with each tensor's byte count once it is written, from any thread.
  ///   - transaction: the run's outputs (committed by the caller), or nil for one of its own, committed
  ///     on success.
  /// - Throws: ``CheckpointError``: `unsupported-dtype` for a dtype safetensors cannot name,
  ///   `duplicate-tensor`, `write-failed`; or what a tensor's source throws.
  /// - Complexity: O(total bytes), tensors written in parallel; memory bounded by threads × the largest
  ///   slice (16 MB) or `.compute` tensor, whatever the file's size.
  public static func write(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], to path: String,
    progress: ProgressHandler? = nil, in transaction: OutputTransaction? = nil
  ) throws {
    try OutputTransaction.run(in: transaction) {
      try open(tensors, metadata: metadata, to: path, progress: progress, in: $0).finish()
    }
  }

  /// Stages the safetensors file `path` in `transaction`: writes its header and every tensor
  /// but the supplied ones, and returns the sink that takes those.
  /// - Parameters:
  ///   - tensors: the file's tensors, in any order (the file orders them widest dtype first, then by name).
  ///   - metadata: the `__metadata__` entries (`format: pt` first unless given).
  ///   - path: the destination, renamed into place when `transaction` commits.
  ///   - progress: called with each tensor's byte count once it is written.
  ///   - transaction: the run's outputs; a dry run's records the file and writes nothing.
  /// - Returns: the sink of the ``OutputTensor/Source/supplied(_:)`` tensors; call its
  ///   ``TensorSink/finish()`` once they are written.
  /// - Throws: `CheckpointError` for a dtype safetensors cannot name, a duplicate name, or a
  ///   failed write.
  /// - Complexity: O(bytes of the tensors it computes itself), written in parallel before it returns;
  ///   the supplied ones cost what the sink is given.
  public static func open(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], to path: String,
    progress: ProgressHandler? = nil, in transaction: OutputTransaction
  ) throws -> TensorSink {
    try validate(tensors, path: path)
    let layout = Layout(tensors, metadata: metadata)
    guard let file = try transaction.open(path, tensors: tensors) else { return .dryRun }
    try write(layout, to: file, progress: progress)
    return TensorSink(layout.tensors, offsets: layout.offsets, file: file, progress: progress)
  }

  /// Writes one safetensors file named `name` into a folder output (no supplied tensors).
  /// - Parameters:
  ///   - tensors: the file's tensors, in any order.
  ///   - metadata: the `__metadata__` entries (`format: pt` first unless given).
  ///   - name: the file's name in the folder.
  ///   - folder: the folder output, from ``OutputTransaction/folder(_:_:)``.
  ///   - progress: called with each tensor's byte count once it is written.
  /// - Throws: as ``write(_:metadata:to:progress:in:)``.
  /// - Complexity: as ``write(_:metadata:to:progress:in:)``.
  public static func write(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], named name: String,
    in folder: OutputFolder,
    progress: ProgressHandler? = nil
  ) throws {
    try open(tensors, metadata: metadata, named: name, in: folder, progress: progress).finish()
  }

  /// Stages the safetensors file `name` in a folder output as ``open(_:metadata:to:progress:in:)``
  /// does.
  /// - Parameters:
  ///   - tensors: the file's tensors, in any order.
  ///   - metadata: the `__metadata__` entries.
  ///   - name: the file's name in the folder.
  ///   - folder: the folder output.
  ///   - progress: called with each tensor's byte count once it is written.
  /// - Returns: the sink of the supplied tensors; call its ``TensorSink/finish()`` once they are
  ///   written.
  /// - Throws: as ``open(_:metadata:to:progress:in:)``.
  public static func open(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], named name: String,
    in folder: OutputFolder, progress: ProgressHandler? = nil
  ) throws -> TensorSink {
    try validate(tensors, path: folder.path + "/" + name)
    let layout = Layout(tensors, metadata: metadata)
    guard let file = try folder.open(name, tensors: tensors) else { return .dryRun }
    try write(layout, to: file, progress: progress)
    return TensorSink(layout.tensors, offsets: layout.offsets, file: file, progress: progress)
  }

  /// The shard size a sharded output gets unless one is given: 5 GB, as `save_pretrained`'s.
  public static let defaultShardSize = 5_000_000_000

  /// The shards ``writeSharded(_:metadata:shardSize:to:extraFiles:progress:in:)`` makes of `tensors`,
  /// in order, and their file names: a shard is closed when the next tensor would take it past
  /// `shardSize` (a larger tensor gets a shard of its own).
  /// - Parameters:
  ///   - tensors: the tensors, in the order they are written.
  ///   - shardSize: the most bytes of tensor data in a shard.
  /// - Returns: the tensors of each shard and its name (`model-0000i-of-0000N.safetensors`).
  /// - Complexity: O(n) in the number of tensors.
  public static func shardPlan(_ tensors: [OutputTensor], shardSize: Int) -> (shards: [[OutputTensor]], names: [String])
  {
    var shards: [[OutputTensor]] = [[]]
    var filled = 0
    for tensor in tensors {
      if filled > 0, filled + tensor.byteCount > shardSize {
        shards.append([])
        filled = 0
      }
      shards[shards.count - 1].append(tensor)
      filled += tensor.byteCount
    }
    return (shards, shards.indices.map { ShardedIndex.shardName($0 + 1, of: shards.count) })
  }

  /// Writes a sharded checkpoint into the folder `path`: shards of at most `shardSize` bytes of tensor
  /// data (a larger tensor gets a shard of its own) named `model-0000i-of-0000N.safetensors`, and
  /// `model.safetensors.index.json`.
  ///
  /// In an existing folder only these files are replaced, and the shards an earlier index of fedlora's
  /// listed that this output does not have are removed; every other file stays.
  ///
  /// - Parameters:
  ///   - tensors: the checkpoint's tensors, in order (no tensor may be supplied).
  ///   - metadata: each shard's `__metadata__`.
  ///   - shardSize: the most bytes of tensor data in a shard (``defaultShardSize`` is
  ///     `save_pretrained`'s).
  ///   - path: the destination folder.
  ///   - extraFiles: files written beside the shards (name, bytes): a model's config and tokenizer.
  ///   - progress: called with each tensor's byte count once it is written.
  ///   - transaction: the run's outputs, or nil for one of its own, committed on success.
  /// - Throws: ``CheckpointError``: `unsupported-dtype`, `duplicate-tensor`, `write-failed`; or what a
  ///   tensor's source throws.
  /// - Complexity: O(total bytes), as ``write(_:metadata:to:progress:in:)``.
  public static func writeSharded(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], shardSize: Int, to path: String,
    extraFiles: [(name: String, contents: [UInt8])] = [], progress: ProgressHandler? = nil,
    in transaction: OutputTransaction? = nil
  ) throws {
    try OutputTransaction.run(in: transaction) {
      try openSharded(
        tensors, metadata: metadata, shardSize: shardSize, to: path, extraFiles: extraFiles, progress: progress, in: $0
      ).finish()
    }
  }

  /// Stages the sharded checkpoint ``writeSharded(_:metadata:shardSize:to:extraFiles:progress:in:)``
  /// writes, every tensor but the supplied ones written.
  /// - Parameters:
  ///   - tensors: the checkpoint's tensors, in order.
  ///   - metadata: each shard's `__metadata__`.
  ///   - shardSize: the most bytes of tensor data in a shard.
  ///   - path: the destination folder.
  ///   - extraFiles: files written beside the shards.
  ///   - progress: called with each tensor's byte count once it is written.
  ///   - transaction: the run's outputs.
  /// - Returns: one sink for the supplied tensors across the shards; call its ``TensorSink/finish()``
  ///   once they are written.
  /// - Throws: as ``writeSharded(_:metadata:shardSize:to:extraFiles:progress:in:)``.
  public static func openSharded(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], shardSize: Int, to path: String,
    extraFiles: [(name: String, contents: [UInt8])] = [], progress: ProgressHandler? = nil,
    in transaction: OutputTransaction
  ) throws -> TensorSink {
    try validate(tensors, path: path)
    let (shards, names) = shardPlan(tensors, shardSize: shardSize)
    var weightMap: [(key: String, value: JSON)] = []
    for (shard, name) in zip(shards, names) {
      for tensor in shard { weightMap.append((tensor.name, .string(name))) }
    }
    weightMap.sort { $0.key < $1.key }
    let total = tensors.reduce(0) { $0 + $1.byteCount }
    let index = JSON.object([
      ("metadata", .object([("total_size", JSON(total)), (ShardedIndex.writerKey, .string(ShardedIndex.writer))])),
      ("weight_map", .object(weightMap)),
    ])
    var sinks: [TensorSink] = []
    try transaction.folder(path) { folder in
      let previous = folder.existed ? ShardedIndex.shardsWrittenByFedlora(in: folder.path) : []
      for (shard, name) in zip(shards, names) {
        sinks.append(try open(shard, metadata: metadata, named: name, in: folder, progress: progress))
      }
      try folder.file(ShardedIndex.fileName, contents: Array(index.prettyText.utf8))
      for extra in extraFiles { try folder.file(extra.name, contents: extra.contents) }
      for name in previous where !names.contains(name) { folder.removeOnCommit(name) }
    }
    return .combining(sinks)
  }

  private static func write(_ layout: Layout, to output: OutputFile, progress: ProgressHandler?) throws {
    var prefix = withUnsafeBytes(of: UInt64(layout.header.count).littleEndian) { Array($0) }
    prefix += layout.header
    try output.write(prefix, at: 0)
    try output.setLength(layout.totalSize)
    try TensorDataWriter.write(layout.tensors, at: layout.offsets, to: output, progress: progress)
  }

  private static func validate(_ tensors: [OutputTensor], path: String) throws(CheckpointError) {
    var names = Set<String>()
    for tensor in tensors {
      guard tensor.dtype.bitsPerElement != nil else {
        throw .unsupportedDType(
          path: path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "write to safetensors")
      }
      guard names.insert(tensor.name).inserted, tensor.name != "__metadata__" else {
        throw .duplicateTensor(path: path, tensor: tensor.name)
      }
    }
  }
}
