#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// A file open for writing at explicit offsets (so tensors can be written in any order,
/// from several threads, with the same bytes as a sequential write).
///
/// It is always a temporary that an ``OutputTransaction`` renames into place; errors name
/// `path`, the destination the user asked for, never the temporary.
public final class OutputFile: Sendable {
  /// The destination this file becomes (what errors name).
  public let path: String
  private let fd: Int32

  /// Creates `temporary` (which must not exist), to become `path`.
  init(temporary: String, becoming path: String) throws(CheckpointError) {
    self.path = path
    fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .writeFailed(path: path, message: systemError()) }
  }

  deinit { close(fd) }

  /// Writes all of `bytes` at byte offset `offset` from the start of the file (safe from several
  /// threads at distinct offsets).
  /// - Parameters:
  ///   - bytes: the bytes to write.
  ///   - offset: where the first one goes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` naming the destination (a full disk, an
  ///   I/O error).
  /// - Complexity: O(`bytes.count`).
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

  /// Writes all of `bytes` at byte offset `offset` from the start of the file.
  /// - Parameters:
  ///   - bytes: the bytes to write.
  ///   - offset: where the first one goes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` naming the destination.
  /// - Complexity: O(`bytes.count`).
  public func write(_ bytes: [UInt8], at offset: Int) throws(CheckpointError) {
    try bytes.withUnsafeBytes { raw in Result { () throws(CheckpointError) in try write(raw, at: offset) } }.get()
  }

  /// Sets the file length (sparse where nothing is written), so that tensors can then be written at
  /// their offsets in any order.
  /// - Parameter length: the file's length in bytes.
  /// - Throws: ``CheckpointError/writeFailed(path:message:)`` naming the destination.
  public func setLength(_ length: Int) throws(CheckpointError) {
    guard ftruncate(fd, off_t(length)) == 0 else { throw .writeFailed(path: path, message: systemError()) }
  }

  /// Flushes the data to stable storage.
  func sync() throws(CheckpointError) {
    guard fsync(fd) == 0 else { throw .writeFailed(path: path, message: systemError()) }
  }
}
