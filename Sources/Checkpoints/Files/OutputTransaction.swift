/// The outputs of one run, staged as temporaries and renamed into place together by `commit`,
/// so a destination never holds a half-written file, and nothing is replaced unless everything
/// was written. Uncommitted temporaries are removed when the transaction goes away (and by
/// ``Temporaries/removeAll()`` on a signal).
///
/// A file output is written beside its destination. A folder output that does not exist yet is
/// written as a temporary folder renamed into place; into an existing folder, each file is
/// written beside its destination and renamed on its own, and every other file there stays.
public final class OutputTransaction {
  private enum Step {
    case move(temporary: String, destination: String)
    case remove(String)
  }

  private var steps: [Step] = []
  private var committed = false

  /// An empty transaction: nothing staged yet.
  public init() {}

  deinit {
    guard !committed else { return }
    for case let .move(temporary, _) in steps { Temporaries.discard(temporary) }
  }

  /// Stages the file `path`: `body` fills it.
  public func file(_ path: String, _ body: (OutputFile) throws -> Void) throws {
    let destination = trimmingTrailingSlashes(path)
    if fileType(destination) == S_IFDIR {
      throw CheckpointError.writeFailed(
        path: destination, message: "is a folder, and this output is a file: give a file name")
    }
    let folder = folderPrefix(of: destination)
    guard folder.isEmpty || fileType(folder) == S_IFDIR else {
      throw CheckpointError.writeFailed(path: destination, message: "its folder \(folder) does not exist")
    }
    Temporaries.removeStale(for: destination)
    let temporary = folder + Temporaries.name(for: lastComponent(destination))
    let output = try Temporaries.createFile(temporary, becoming: destination)
    steps.append(.move(temporary: temporary, destination: destination))
    try body(output)
    try output.sync()
  }

  /// Stages the folder `path`: `body` writes its files through the ``OutputFolder``.
  public func folder(_ path: String, _ body: (OutputFolder) throws -> Void) throws {
    let destination = trimmingTrailingSlashes(path)
    Temporaries.removeStale(for: destination)
    switch fileType(destination) {
    case S_IFDIR?:
      try body(OutputFolder(path: destination, staging: nil, transaction: self))
    case nil:
      let parent = folderPrefix(of: destination)
      guard parent.isEmpty || fileType(parent) == S_IFDIR else {
        throw CheckpointError.writeFailed(path: destination, message: "its folder \(parent) does not exist")
      }
      let temporary = parent + Temporaries.name(for: lastComponent(destination))
      try Temporaries.createFolder(temporary, becoming: destination)
      steps.append(.move(temporary: temporary, destination: destination))
      try body(OutputFolder(path: destination, staging: temporary, transaction: self))
    default:
      throw CheckpointError.writeFailed(path: destination, message: "exists and is not a folder")
    }
  }

  /// Stages the removal of `path` (a file an earlier output of fedlora made that this one
  /// replaces), done after every rename.
  func remove(_ path: String) { steps.append(.remove(path)) }

  /// Renames every staged output into place, in the order staged, then makes the staged
  /// removals.
  public func commit() throws {
    for case let .move(temporary, destination) in steps { try Temporaries.moveIntoPlace(temporary, destination) }
    committed = true
    for case let .remove(path) in steps { unlink(path) }
  }

  /// Runs `body` in `transaction`, or in a transaction of its own that it commits.
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
