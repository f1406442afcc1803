#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file open for writing at explicit offsets (so tensors can be written in any order,
/// from several threads, with the same bytes as a sequential write).
public final class OutputFile: @unchecked Sendable {
  public let path: String
  private let fd: Int32

  /// Creates (or truncates) `path`.
  public init(creating path: String) throws(CheckpointError) {
    self.path = path
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .writeFailed(path: path, message: systemError()) }
  }

  deinit { close(fd) }

  /// Writes all of `bytes` at `offset`.
  public func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CheckpointError) {
    guard let base = bytes.baseAddress else { return }
    var done = 0
    while done < bytes.count {
      let written = pwrite(fd, base + done, bytes.count - done, off_t(offset + done))
      if written < 0, errno == EINTR { continue }
      guard written > 0 else { throw .writeFailed(path: path, message: systemError()) }
      done += written
    }
  }

  public func write(_ bytes: [UInt8], at offset: Int) throws(CheckpointError) {
    try bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw, at: offset) } }.get()
  }

  /// Sets the file length (sparse where nothing is written).
  public func setLength(_ length: Int) throws(CheckpointError) {
    guard ftruncate(fd, off_t(length)) == 0 else { throw .writeFailed(path: path, message: systemError()) }
  }

  /// Flushes the data to stable storage.
  public func sync() throws(CheckpointError) {
    guard fsync(fd) == 0 else { throw .writeFailed(path: path, message: systemError()) }
  }
}

/// Writes outputs through a temporary sibling that is renamed into place only when complete,
/// so a destination never holds a half-written file or folder, whatever fails.
public enum AtomicWrite {
  /// Writes the file at `path`: `body` fills a temporary file in the same folder.
  public static func file(_ path: String, _ body: (OutputFile) throws -> Void) throws {
    let temporary = temporarySibling(of: path)
    do {
      let output = try OutputFile(creating: temporary)
      try body(output)
      try output.sync()
      try moveIntoPlace(temporary, path)
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// Writes the folder at `path`: `body` fills a temporary folder (given as its argument).
  /// An existing folder at `path` is replaced only after the new one is complete.
  public static func directory(_ path: String, _ body: (String) throws -> Void) throws {
    let temporary = temporarySibling(of: path)
    guard mkdir(temporary, 0o755) == 0 else {
      throw CheckpointError.writeFailed(path: path, message: systemError())
    }
    do {
      try body(temporary)
      var info = stat()
      if lstat(path, &info) == 0 {
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
          throw CheckpointError.writeFailed(path: path, message: "exists and is not a folder")
        }
        let old = temporarySibling(of: path) + ".old"
        try moveIntoPlace(path, old)
        do { try moveIntoPlace(temporary, path) } catch {
          _ = rename(old, path)
          throw error
        }
        removeTree(old)
      } else {
        try moveIntoPlace(temporary, path)
      }
    } catch {
      removeTree(temporary)
      throw error
    }
  }

  private static func moveIntoPlace(_ from: String, _ to: String) throws(CheckpointError) {
    guard rename(from, to) == 0 else { throw .writeFailed(path: to, message: systemError()) }
  }

  private static func temporarySibling(of path: String) -> String {
    let folder = folderPrefix(of: path)
    return "\(folder).\(path.dropFirst(folder.count)).fedlora-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  }

  /// Removes a folder this process made, with the files in it (no deeper nesting is created).
  static func removeTree(_ path: String) {
    for name in entries(of: path) { unlink(path + "/" + name) }
    rmdir(path)
  }

  /// The names in a folder (without `.` and `..`), sorted.
  static func entries(of path: String) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
      if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
  }
}
