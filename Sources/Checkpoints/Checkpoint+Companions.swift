extension Checkpoint {
  /// Weights of every framework and their indexes: what stays behind when a model's small
  /// files travel.
  static let weightSuffixes = [
    ".safetensors", ".gguf", ".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".ckpt", ".index.json",
  ]

  /// The names of the small files that travel with a model folder (config, tokenizer, generation
  /// config): every regular file of `folder` that is no weight file, index or hidden file. What a
  /// merged or converted model writes beside its shards.
  ///
  /// A sentence-transformers model also needs the module folders its `modules.json` lists
  /// (`1_Pooling/`, `2_Dense/`, ...): their files come along whole, weights included, as `FOLDER/NAME`.
  ///
  /// - Parameter folder: a model folder.
  /// - Returns: the names, sorted within the folder and then within each module folder; empty when
  ///   `folder` cannot be listed.
  /// - Complexity: O(entries) of `folder` and of each module folder listed; no file is read but
  ///   `modules.json`.
  public static func companionNames(in folder: String) -> [String] {
    let own = listDirectory(folder).filter { name in
      !weightSuffixes.contains(where: name.hasSuffix) && !name.hasPrefix(".") && !isDirectory(folder + "/" + name)
    }
    return own
      + moduleFolders(in: folder).flatMap { module in
        listDirectory(folder + "/" + module).filter { !$0.hasPrefix(".") && isFile(folder + "/" + module + "/" + $0) }
          .map { module + "/" + $0 }
      }
  }

  /// The module folders a sentence-transformers `modules.json` in `folder` lists: plain names of
  /// folders there (the root module's empty path, and anything with `/` or `..`, left out).
  static func moduleFolders(in folder: String) -> [String] {
    let path = folder + "/modules.json"
    guard isFile(path), let modules = (try? JSON.parse(MappedFile.contents(of: path), path: path))?.arrayValue else {
      return []
    }
    return modules.compactMap { $0["path"]?.stringValue }.filter { name in
      !name.isEmpty && !name.contains("/") && !name.hasPrefix(".") && isDirectory(folder + "/" + name)
    }
  }

  /// The folder of the checkpoint at `path`: the path itself when it is a folder, else the folder that
  /// holds the file.
  /// - Parameter path: a checkpoint file or folder.
  /// - Returns: a folder path (`.` for a bare file name).
  public static func folder(holding path: String) -> String { isDirectory(path) ? path : parentFolder(of: path) }

  /// The companion files (``companionNames(in:)``) of this checkpoint's folder, with their contents.
  ///
  /// They are read under the symlink rule of ``ModelFolder``: a FIFO, or a link that leads out of the
  /// folder, is refused by name.
  ///
  /// - Returns: each file's name (relative to the folder) and bytes, in ``companionNames(in:)`` order.
  /// - Throws: ``CheckpointError``: `io` when a file cannot be read or is refused by that rule.
  /// - Complexity: O(bytes) of the companion files, all read into memory (they are small: configs,
  ///   tokenizers).
  public func companionFiles() throws(CheckpointError) -> [(name: String, contents: [UInt8])] {
    var files: [(name: String, contents: [UInt8])] = []
    for name in Self.companionNames(in: folder) { files.append((name, try ModelFolder.contents(of: name, in: folder))) }
    return files
  }
}
