/// A folder output being staged: its files are written through it.
public final class OutputFolder {
  /// The destination folder.
  public let path: String
  /// The temporary folder that becomes `path`; nil when `path` exists and its files are
  /// replaced one by one.
  private let staging: String?
  private unowned let transaction: OutputTransaction

  init(path: String, staging: String?, transaction: OutputTransaction) {
    self.path = path
    self.staging = staging
    self.transaction = transaction
  }

  /// Whether the destination existed (and may hold an earlier output's files).
  public var existed: Bool { staging == nil }

  /// Stages the file `name` in the folder: `body` fills it.
  public func file(_ name: String, _ body: (OutputFile) throws -> Void) throws {
    let destination = path + "/" + name
    let output: OutputFile
    if let staging {
      output = try Temporaries.createFile(inFolder: staging + "/" + name, becoming: destination)
    } else {
      let temporary = path + "/" + Temporaries.name(for: name)
      output = try Temporaries.createFile(temporary, becoming: destination)
      transaction.stage(temporary, destination)
    }
    try body(output)
    try output.sync()
  }

  /// Stages the file `name` with `contents`.
  public func file(_ name: String, contents: [UInt8]) throws {
    try file(name) { try $0.write(contents, at: 0) }
  }

  /// Removes the file `name`, an earlier output's that this one no longer has, on commit.
  public func removeOnCommit(_ name: String) {
    if staging == nil, entryType(path + "/" + name) == S_IFREG { transaction.remove(path + "/" + name) }
  }
}
