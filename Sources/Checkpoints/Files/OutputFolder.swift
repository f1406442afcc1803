#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// A folder output being staged: its files are written through it.
public final class OutputFolder {
  /// The destination folder.
  public let path: String
  /// The temporary folder that becomes `path`; nil when `path` exists and its files are
  /// replaced one by one; empty in a dry run of a new folder.
  private let staging: String?
  private unowned let transaction: OutputTransaction

  init(path: String, staging: String?, transaction: OutputTransaction) {
    self.path = path
    self.staging = staging
    self.transaction = transaction
  }

  /// Whether the destination existed (and may hold an earlier output's files).
  public var existed: Bool { staging == nil }

  /// Stages the file `name` in the folder: `body` fills it, and it is synced to disk when `body`
  /// returns. A dry run records it (with `tensors`) and does not call `body`.
  /// - Parameters:
  ///   - name: a file name relative to the folder (a subfolder is made when it has one).
  ///   - tensors: the tensors it will hold, for a dry run's plan.
  ///   - body: writes the file's bytes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when the name is a folder or the file
  ///   cannot be made or synced; or what `body` throws.
  public func file(_ name: String, tensors: [OutputTensor] = [], _ body: (OutputFile) throws -> Void) throws {
    guard let output = try open(name, tensors: tensors) else { return }
    try body(output)
    try output.sync()
  }

  /// Stages the file `name` holding `tensors` and returns it to be written (and synced by
  /// whoever writes it last); nil in a dry run, which records it instead.
  func open(_ name: String, tensors: [OutputTensor]) throws -> OutputFile? {
    let destination = path + "/" + name
    if fileType(destination) == S_IFDIR {
      throw CheckpointError.writeFailed(
        path: destination, message: "is a folder, and this output is a file: give a file name")
    }
    if transaction.dryRun {
      transaction.plan(destination, tensors)
      return nil
    }
    // A file in a subfolder (a sentence-transformers module's): the subfolder is made first.
    let subfolder = folderPrefix(of: name)
    let output: OutputFile
    if let staging {
      if !subfolder.isEmpty { try Temporaries.createSubfolder(staging + "/" + subfolder, becoming: destination) }
      output = try Temporaries.createFile(inFolder: staging + "/" + name, becoming: destination)
    } else {
      if !subfolder.isEmpty { try transaction.makeParents(of: destination) }
      let temporary = path + "/" + subfolder + Temporaries.name(for: lastComponent(name))
      output = try Temporaries.createFile(temporary, becoming: destination)
      transaction.stage(temporary, destination)
    }
    return output
  }

  /// Stages the file `name` with `contents` (a config, an index).
  /// - Parameters:
  ///   - name: a file name relative to the folder.
  ///   - contents: its bytes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when it cannot be made, written or
  ///   synced.
  public func file(_ name: String, contents: [UInt8]) throws {
    try file(name) { try $0.write(contents, at: 0) }
  }

  /// Removes the regular file `name`, an earlier output's that this one no longer has (an old shard),
  /// when the transaction commits; nothing in a new folder.
  /// - Parameter name: a file name relative to the folder.
  public func removeOnCommit(_ name: String) {
    if staging == nil, entryType(path + "/" + name) == S_IFREG { transaction.remove(path + "/" + name) }
  }
}
