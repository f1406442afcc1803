#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// The outputs of one run, staged as temporaries and renamed into place together by `commit`,
/// so a destination never holds a half-written file, and nothing is replaced unless everything
/// was written. Uncommitted temporaries are removed when the transaction goes away (and by
/// ``Temporaries/removeAll()`` on a signal).
///
/// A file output is written beside its destination. A folder output that does not exist yet is
/// written as a temporary folder renamed into place; into an existing folder, each file is
/// written beside its destination and renamed on its own, and every other file there stays.
/// Missing parent folders of a destination are created, as `save_pretrained` does, and removed
/// again (when still empty) if the transaction does not commit.
///
/// A dry-run transaction (``init(dryRun:)``) makes every check a real one makes before its first
/// byte, through the same code, and records what it would write (``planned``) instead of
/// writing: a dry run is the real run minus the writing.
public final class OutputTransaction {
  private enum Step {
    case move(temporary: String, destination: String)
    case remove(String)
  }

  /// A file the transaction would write, with the tensors it would hold (none for a metadata
  /// file such as a config or an index).
  public struct PlannedFile: Sendable {
    /// The destination path.
    public let path: String
    /// The tensors written into it.
    public let tensors: [OutputTensor]
  }

  private var steps: [Step] = []
  private var createdFolders: [String] = []
  private var committed = false
  /// Whether this transaction only checks and records.
  public let dryRun: Bool
  /// What a dry run would write, in the order written (empty for a real transaction).
  public private(set) var planned: [PlannedFile] = []

  /// An empty transaction: nothing staged yet.
  /// - Parameter dryRun: check and record (``planned``), write nothing.
  public init(dryRun: Bool = false) { self.dryRun = dryRun }

  deinit {
    guard !committed else { return }
    for case let .move(temporary, _) in steps { Temporaries.discard(temporary) }
    Temporaries.discardFolders(createdFolders)
  }

  /// Stages the file `path`: `body` fills a temporary beside it, synced to disk when `body` returns,
  /// renamed into place by ``commit()``. A dry run records it (with `tensors`) and does not call
  /// `body`.
  /// - Parameters:
  ///   - path: the destination file; missing parent folders are created.
  ///   - tensors: the tensors it will hold, for a dry run's plan.
  ///   - body: writes the file's bytes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when `path` is a folder, a parent is not
  ///   a folder, or the temporary cannot be made or synced; or what `body` throws.
  public func file(_ path: String, tensors: [OutputTensor] = [], _ body: (OutputFile) throws -> Void) throws {
    guard let output = try open(path, tensors: tensors) else { return }
    try body(output)
    try output.sync()
  }

  /// Stages the file `path` holding `tensors` and returns it to be written (and synced by
  /// whoever writes it last); nil in a dry run, which records it instead.
  func open(_ path: String, tensors: [OutputTensor]) throws -> OutputFile? {
    let destination = trimmingTrailingSlashes(path)
    if fileType(destination) == S_IFDIR {
      throw CheckpointError.writeFailed(
        path: destination, message: "is a folder, and this output is a file: give a file name")
    }
    let folder = folderPrefix(of: destination)
    try makeParents(of: destination)
    if dryRun {
      plan(destination, tensors)
      return nil
    }
    Temporaries.removeStale(for: destination)
    let temporary = folder + Temporaries.name(for: lastComponent(destination))
    let output = try Temporaries.createFile(temporary, becoming: destination)
    steps.append(.move(temporary: temporary, destination: destination))
    return output
  }

  /// Stages the folder `path`: `body` writes its files through the ``OutputFolder``. A new folder is a
  /// temporary folder renamed into place; in an existing one each file is staged beside its destination
  /// and the other files stay.
  /// - Parameters:
  ///   - path: the destination folder; missing parent folders are created.
  ///   - body: stages the folder's files.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when `path` exists and is not a folder,
  ///   or the temporary cannot be made; or what `body` throws.
  public func folder(_ path: String, _ body: (OutputFolder) throws -> Void) throws {
    let destination = trimmingTrailingSlashes(path)
    if !dryRun { Temporaries.removeStale(for: destination) }
    switch fileType(destination) {
    case S_IFDIR?:
      try body(OutputFolder(path: destination, staging: nil, transaction: self))
    case nil:
      try makeParents(of: destination)
      if dryRun { return try body(OutputFolder(path: destination, staging: "", transaction: self)) }
      let temporary = folderPrefix(of: destination) + Temporaries.name(for: lastComponent(destination))
      try Temporaries.createFolder(temporary, becoming: destination)
      steps.append(.move(temporary: temporary, destination: destination))
      try body(OutputFolder(path: destination, staging: temporary, transaction: self))
    default:
      throw CheckpointError.writeFailed(path: destination, message: "exists and is not a folder")
    }
  }

  /// Creates the missing folders above `destination` (a dry run checks that it could: the
  /// nearest existing one must be a folder).
  func makeParents(of destination: String) throws(CheckpointError) {
    var missing: [String] = []
    var folder = trimmingTrailingSlashes(folderPrefix(of: destination))
    while !folder.isEmpty, folder != "/", entryType(folder) == nil {
      missing.append(folder)
      folder = trimmingTrailingSlashes(folderPrefix(of: folder))
    }
    if !folder.isEmpty, fileType(folder) != S_IFDIR {
      throw .writeFailed(path: destination, message: "its folder \(folder) is not a folder")
    }
    if dryRun { return }
    for created in missing.reversed() {
      try Temporaries.createFolder(created, for: destination)
      createdFolders.append(created)
    }
  }

  /// Records a file a dry run would write.
  func plan(_ path: String, _ tensors: [OutputTensor]) { planned.append(PlannedFile(path: path, tensors: tensors)) }

  /// Stages the removal of `path` (a file an earlier output of fedlora made that this one
  /// replaces), done after every rename.
  func remove(_ path: String) { steps.append(.remove(path)) }

  /// Renames every staged output into place, in the order staged, then makes the staged removals. Not
  /// for a dry run (a precondition).
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` when a rename fails; outputs renamed
  ///   before it stay in place.
  /// - Complexity: O(staged files): renames only, no data is copied.
  public func commit() throws {
    precondition(!dryRun, "a dry-run transaction writes nothing to commit")
    for case let .move(temporary, destination) in steps { try Temporaries.moveIntoPlace(temporary, destination) }
    Temporaries.keepFolders(createdFolders)
    committed = true
    for case let .remove(path) in steps { unlink(path) }
  }

  /// Runs `body` in `transaction`, or in a transaction of its own that it commits when `body` returns.
  /// - Parameters:
  ///   - transaction: the caller's transaction (committed by the caller), or nil.
  ///   - body: stages outputs in the transaction.
  /// - Throws: what `body` or ``commit()`` throws; on a failure nothing of an own transaction is left
  ///   behind.
  public static func run(in transaction: OutputTransaction?, _ body: (OutputTransaction) throws -> Void) throws {
    if let transaction { return try body(transaction) }
    let own = OutputTransaction()
    try body(own)
    try own.commit()
  }
}

extension OutputTransaction {
  func stage(_ temporary: String, _ destination: String) {
    steps.append(.move(temporary: temporary, destination: destination))
  }
}
