/// A sharded checkpoint: `model.safetensors.index.json` (or transformers'
/// `pytorch_model.bin.index.json`) and the shards it names, safetensors or PyTorch zips.
public struct ShardedIndex: Sendable {
  /// The index file of a sharded safetensors checkpoint (the one fedlora writes).
  public static let fileName = "model.safetensors.index.json"
  /// The index file transformers writes beside `.bin` shards.
  public static let pytorchFileName = "pytorch_model.bin.index.json"

  /// One shard: its file, tensors and (safetensors) metadata.
  public struct Shard: Sendable {
    /// The shard file, mapped.
    public let file: MappedFile
    /// The shard's tensors in its reader's order (data offset; state dict for a PyTorch shard).
    public let tensors: [Tensor]
    /// The shard's safetensors `__metadata__`; empty for a PyTorch shard.
    public let metadata: [(key: String, value: String)]
  }

  /// The path of the index file.
  public let path: String
  /// Every shard the weight map names, in the order it first names them.
  public let shards: [Shard]
  /// Tensors in weight-map order (sorted by name), each from the shard the map names.
  public let tensors: [Tensor]

  /// The name of shard `index` of `count`, as `model-00001-of-00003.safetensors`.
  /// - Parameters:
  ///   - index: the shard's number, from 1.
  ///   - count: the number of shards.
  /// - Returns: the file name.
  public static func shardName(_ index: Int, of count: Int) -> String {
    func five(_ n: Int) -> String { String(repeating: "0", count: max(0, 5 - String(n).count)) + String(n) }
    return "model-\(five(index))-of-\(five(count)).safetensors"
  }

  /// The index metadata entry that marks an index fedlora wrote (so a later output into the
  /// same folder may remove the shards it listed, and no others).
  static let writerKey = "writer"
  static let writer = "fedlora"

  /// The shard files an index of fedlora's in `folder` lists (none when there is no index,
  /// someone else wrote it, or it cannot be read).
  static func shardsWrittenByFedlora(in folder: String) -> [String] {
    guard let bytes = try? MappedFile.contents(of: folder + "/" + fileName),
      let index = try? JSON.parse(bytes, path: fileName),
      index["metadata"]?[writerKey]?.stringValue == writer, let weightMap = index["weight_map"]?.objectValue
    else { return [] }
    var names: [String] = []
    for case let .string(name) in weightMap.map(\.value) where isShardName(name) && !names.contains(name) {
      names.append(name)
    }
    return names
  }

  /// Whether a sharded output writes a file of this name: a shard of fedlora's naming, or the index.
  /// - Parameter name: a file name in the output folder.
  /// - Returns: true for `model.safetensors.index.json` and `model-NNNNN-of-NNNNN.safetensors`.
  public static func isOutputFile(_ name: String) -> Bool { name == fileName || isShardName(name) }

  /// Whether `name` is a shard name of the form fedlora writes (`model-00001-of-00003.safetensors`).
  static func isShardName(_ name: String) -> Bool {
    let parts = name.split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 4, parts[0] == "model", parts[2] == "of", parts[3].hasSuffix(".safetensors") else {
      return false
    }
    let digits = [parts[1], parts[3].dropLast(".safetensors".count)]
    return digits.allSatisfy { $0.count == 5 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
  }

  /// Reads the index at `path` and opens every shard its weight map names (files in the index's folder,
  /// safetensors or PyTorch zips).
  /// - Parameter path: the index file.
  /// - Throws: ``CheckpointError``: `bad-index` for a weight map that is missing or malformed,
  ///   `bad-shard-name` for a name with a path in it, `missing-shard`, `tensor-not-in-shard`, `io` for
  ///   a shard that is a link out of the folder or cannot be mapped; and each shard's reader errors.
  /// - Complexity: O(index bytes + every shard's header); each shard is opened once, each tensor found
  ///   by name in O(1).
  public init(path: String) throws(CheckpointError) {
    self.path = path
    let index = try JSON.parse(MappedFile.contents(of: path), path: path)
    guard let weightMap = index["weight_map"]?.objectValue else {
      throw .badIndex(path: path, message: "'weight_map' is missing or not an object")
    }
    let folder = folderPrefix(of: path)

    // Linear in the index: each shard named once, each tensor found by name in its shard.
    var shardNames: [String] = []
    var seen = Set<String>()
    for (tensor, value) in weightMap {
      guard let shard = value.stringValue else {
        throw .badIndex(path: path, message: "weight_map entry '\(tensor)' is not a string")
      }
      guard !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
        throw .badShardName(path: path, shard: shard)
      }
      if seen.insert(shard).inserted { shardNames.append(shard) }
    }
    var shards: [String: Shard] = [:]
    for name in shardNames {
      let shardPath = folder + name
      let shardFile: MappedFile
      // A missing shard is named as such; any other failure (a link out of the folder, the
      // memory-map limit) says what it is.
      guard Checkpoint.isFile(shardPath) else { throw .missingShard(path: path, shard: name) }
      try ModelFolder.checkContained(shardPath, in: folder.isEmpty ? "." : String(folder.dropLast()))
      shardFile = try MappedFile(path: shardPath)
      let magic = shardFile.size >= 4 ? try shardFile.load(UInt32.self, at: 0) : 0
      if magic == ZipArchive.localSignature {
        shards[name] = Shard(file: shardFile, tensors: try PyTorchFile(file: shardFile).tensors, metadata: [])
      } else {
        let safetensors = try SafeTensorsFile(file: shardFile)
        shards[name] = Shard(file: shardFile, tensors: safetensors.tensors, metadata: safetensors.metadata)
      }
    }
    let byName = shards.mapValues { shard in
      Dictionary(shard.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
    var tensors: [Tensor] = []
    for (tensor, value) in weightMap.sorted(by: { $0.key < $1.key }) {
      let shard = value.stringValue ?? ""
      guard let found = byName[shard]?[tensor] else {
        throw .tensorNotInShard(path: path, tensor: tensor, shard: shard)
      }
      tensors.append(found)
    }
    self.shards = shardNames.compactMap { shards[$0] }
    self.tensors = tensors
  }
}
