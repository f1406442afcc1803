#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// The rule for files fedlora finds inside a model or adapter folder (shards, configs,
/// tokenizer files, the companions copied beside a merged model): a symlink is followed only to
/// a file within the model's repository, that is the folder itself or, for a Hugging Face cache
/// snapshot (`models--OWNER--NAME/snapshots/REV/`, whose files are links into
/// `models--OWNER--NAME/blobs/`), the cache entry `models--OWNER--NAME/`. A link elsewhere is
/// refused by name, so a folder cannot pull an outside file into an output or an error message.
/// The paths a user names on the command line are theirs and are followed.
public enum ModelFolder {
  /// Checks that `path`, a file found in `folder`, resolves inside the folder's repository (the folder,
  /// or the Hugging Face cache entry of a snapshot folder).
  /// - Parameters:
  ///   - path: a file inside `folder` (possibly a symlink, or in a subfolder).
  ///   - folder: the model or adapter folder it was found in.
  /// - Throws: ``CheckpointError/io(path:message:)`` naming the link's target when it leads outside.
  public static func checkContained(_ path: String, in folder: String) throws(CheckpointError) {
    // A file in a subfolder (a sentence-transformers module) may be reached through a linked folder.
    guard entryType(path) == S_IFLNK || path.dropFirst(folder.count + 1).contains("/") else { return }
    let root = repositoryRoot(of: PathConflicts.resolve(folder))
    let target = PathConflicts.resolve(path)
    guard target.hasPrefix(root == "/" ? "/" : root + "/") else {
      throw .io(path: path, message: "a symlink to \(target), outside the model folder \(root): not followed")
    }
  }

  /// The folder, or the Hugging Face cache entry a snapshot folder belongs to.
  static func repositoryRoot(of folder: String) -> String {
    let parts = folder.split(separator: "/", omittingEmptySubsequences: false)
    if parts.count >= 3, parts[parts.count - 2] == "snapshots", parts[parts.count - 3].hasPrefix("models--") {
      return parts.dropLast(2).joined(separator: "/")
    }
    return folder
  }

  /// The bytes of `name` in `folder`, under the symlink rule (``checkContained(_:in:)``).
  /// - Parameters:
  ///   - name: a file name relative to `folder`.
  ///   - folder: the model or adapter folder.
  /// - Returns: every byte of the file.
  /// - Throws: ``CheckpointError/io(path:message:)`` when the file is refused by the rule, missing, or
  ///   cannot be read.
  /// - Complexity: O(file size): the file is read into memory (configs, tokenizers).
  public static func contents(of name: String, in folder: String) throws(CheckpointError) -> [UInt8] {
    let path = folder + "/" + name
    try checkContained(path, in: folder)
    return try MappedFile.contents(of: path)
  }
}
