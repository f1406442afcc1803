extension Checkpoint {
  /// Weights of every framework and their indexes: what stays behind when a model's small
  /// files travel.
  static let weightSuffixes = [
    ".safetensors", ".gguf", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt", ".index.json",
  ]

  /// The names of the small files that travel with a model folder (config, tokenizer,
  /// generation config): every regular file of `folder` that is no weight file, index or
  /// hidden file. What a merged or converted model writes beside its shards.
  public static func companionNames(in folder: String) -> [String] {
    listDirectory(folder).filter { name in
      !weightSuffixes.contains(where: name.hasSuffix) && !name.hasPrefix(".") && !isDirectory(folder + "/" + name)
    }
  }

  /// The folder of the checkpoint at `path`: the path itself when it is a folder, else the
  /// folder that holds the file.
  public static func folder(holding path: String) -> String { isDirectory(path) ? path : parentFolder(of: path) }

  /// The companion files (``companionNames(in:)``) of this checkpoint's folder with their
  /// contents, under the symlink rule of ``ModelFolder`` (a FIFO or a link out of the folder is
  /// refused by name).
  public func companionFiles() throws(CheckpointError) -> [(name: String, contents: [UInt8])] {
    var files: [(name: String, contents: [UInt8])] = []
    for name in Self.companionNames(in: folder) { files.append((name, try ModelFolder.contents(of: name, in: folder))) }
    return files
  }
}
