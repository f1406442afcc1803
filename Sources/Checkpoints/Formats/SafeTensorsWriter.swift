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
        entries.append((tensor.name, .object([
          ("dtype", .string(tensor.dtype.rawValue)),
          ("shape", .array(tensor.shape.map { JSON($0) })),
          ("data_offsets", .array([JSON(position), JSON(position + tensor.byteCount)])),
        ])))
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

  /// Writes one safetensors file at `path` (through a temporary file renamed into place).
  /// Every tensor's dtype must be one safetensors names.
  public static func write(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], to path: String,
    progress: ProgressHandler? = nil
  ) throws {
    try validate(tensors, path: path)
    try AtomicWrite.file(path) { output in try write(Layout(tensors, metadata: metadata), to: output, progress: progress) }
  }

  /// Writes a sharded checkpoint into the folder `path`: shards of at most `shardSize` bytes of
  /// tensor data (a larger tensor gets a shard of its own) named `model-0000i-of-0000N.safetensors`,
  /// and `model.safetensors.index.json`. `extraFiles` (name, bytes) are written beside them.
  public static func writeSharded(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)] = [], shardSize: Int, to path: String,
    extraFiles: [(name: String, contents: [UInt8])] = [], progress: ProgressHandler? = nil
  ) throws {
    try validate(tensors, path: path)
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
    let names = shards.indices.map { ShardedIndex.shardName($0 + 1, of: shards.count) }
    try AtomicWrite.directory(path) { folder in
      for (shard, name) in zip(shards, names) {
        try write(Layout(shard, metadata: metadata), to: OutputFile(creating: folder + "/" + name), progress: progress)
      }
      var weightMap: [(key: String, value: JSON)] = []
      for (shard, name) in zip(shards, names) {
        for tensor in shard { weightMap.append((tensor.name, .string(name))) }
      }
      weightMap.sort { $0.key < $1.key }
      let total = tensors.reduce(0) { $0 + $1.byteCount }
      let index = JSON.object([("metadata", .object([("total_size", JSON(total))])), ("weight_map", .object(weightMap))])
      try OutputFile(creating: folder + "/" + ShardedIndex.fileName).write(Array(index.prettyText.utf8), at: 0)
      for extra in extraFiles { try OutputFile(creating: folder + "/" + extra.name).write(extra.contents, at: 0) }
    }
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
        throw .unsupportedDType(path: path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "write to safetensors")
      }
      guard names.insert(tensor.name).inserted, tensor.name != "__metadata__" else {
        throw .duplicateTensor(path: path, tensor: tensor.name)
      }
    }
  }
}
