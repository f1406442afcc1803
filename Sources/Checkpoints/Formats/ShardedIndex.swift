/// A sharded safetensors checkpoint: `model.safetensors.index.json` and the shards it names.
public struct ShardedIndex: Sendable {
  public static let fileName = "model.safetensors.index.json"

  public let path: String
  public let shards: [SafeTensorsFile]
  /// Tensors in weight-map order (sorted by name), each from the shard the map names.
  public let tensors: [Tensor]

  public static func shardName(_ index: Int, of count: Int) -> String {
    func five(_ n: Int) -> String { String(repeating: "0", count: max(0, 5 - String(n).count)) + String(n) }
    return "model-\(five(index))-of-\(five(count)).safetensors"
  }

  public init(path: String) throws(CheckpointError) {
    self.path = path
    let index = try JSON.parse(MappedFile.contents(of: path), path: path)
    guard let weightMap = index["weight_map"]?.objectValue else {
      throw .badIndex(path: path, message: "'weight_map' is missing or not an object")
    }
    let folder = folderPrefix(of: path)

    var shardNames: [String] = []
    for (tensor, value) in weightMap {
      guard let shard = value.stringValue else {
        throw .badIndex(path: path, message: "weight_map entry '\(tensor)' is not a string")
      }
      guard !shard.isEmpty, !shard.contains("/"), shard != "..", shard != "." else {
        throw .badShardName(path: path, shard: shard)
      }
      if !shardNames.contains(shard) { shardNames.append(shard) }
    }
    var shards: [String: SafeTensorsFile] = [:]
    for name in shardNames {
      let shardPath = folder + name
      let shardFile: MappedFile
      do { shardFile = try MappedFile(path: shardPath) } catch { throw .missingShard(path: path, shard: name) }
      shards[name] = try SafeTensorsFile(file: shardFile)
    }
    var tensors: [Tensor] = []
    for (tensor, value) in weightMap.sorted(by: { $0.key < $1.key }) {
      let shard = value.stringValue ?? ""
      guard let found = shards[shard]?.tensors.first(where: { $0.name == tensor }) else {
        throw .tensorNotInShard(path: path, tensor: tensor, shard: shard)
      }
      tensors.append(found)
    }
    self.shards = shardNames.compactMap { shards[$0] }
    self.tensors = tensors
  }
}
