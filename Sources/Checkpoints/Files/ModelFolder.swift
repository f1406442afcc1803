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
  /// Throws when `path`, a file found in `folder`, resolves outside the folder's repository.
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

  /// The bytes of `name` in `folder`, under the symlink rule.
  public static func contents(of name: String, in folder: String) throws(CheckpointError) -> [UInt8] {
    let path = folder + "/" + name
    try checkContained(path, in: folder)
    return try MappedFile.contents(of: path)
  }
}
