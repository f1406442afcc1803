#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A read-only memory map of a whole file, with bounds-checked unaligned little-endian loads.
///
/// Nothing is copied: tensor data is read straight from the page cache, and pages the kernel
/// does not need stay on disk. The map lives as long as this object.
public final class MappedFile: @unchecked Sendable {
  public let path: String
  public let size: Int
  private let base: UnsafeRawPointer?

  public init(path: String) throws(CheckpointError) {
    self.path = path
    // A FIFO or device where a file is expected is refused before it is opened (opening a FIFO
    // for reading blocks until a writer comes); O_NONBLOCK covers one swapped in meanwhile.
    var before = stat()
    guard stat(path, &before) == 0 else { throw .io(path: path, message: systemError()) }
    guard (before.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw .io(path: path, message: systemError()) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .io(path: path, message: systemError()) }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
    size = Int(info.st_size)
    if size == 0 {
      base = nil
      return
    }
    let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
    guard let pointer, pointer != MAP_FAILED else {
      let reason = errno == ENOMEM ? "out of memory maps or address space (the process's memory-map limit, vm.max_map_count?)" : systemError()
      throw .io(path: path, message: "mmap failed: \(reason)")
    }
    base = UnsafeRawPointer(pointer)
  }

  deinit {
    if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
  }

  /// A copy of a small file's bytes (configs, indexes), made while the map is alive.
  public static func contents(of path: String) throws(CheckpointError) -> [UInt8] {
    let file = try MappedFile(path: path)
    return withExtendedLifetime(file) { Array(file.bytes) }
  }

  /// The whole file as raw bytes. Valid only while this object is alive: keep a reference
  /// (or use `withExtendedLifetime`) for as long as the buffer is used.
  public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: size) }

  /// The bytes in `range`, which the caller has checked to lie inside the file.
  public func bytes(_ range: Range<Int>) -> UnsafeRawBufferPointer {
    precondition(range.lowerBound >= 0 && range.upperBound <= size, "range outside the mapped file")
    return UnsafeRawBufferPointer(rebasing: bytes[range])
  }

  /// Whether `count` bytes starting at `offset` lie inside the file (overflow-safe).
  public func contains(offset: Int, count: Int) -> Bool {
    offset >= 0 && count >= 0 && offset <= size && count <= size - offset
  }

  /// An unaligned little-endian load at `offset`; the caller has checked the bounds.
  @inline(__always)
  public func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    precondition(contains(offset: offset, count: MemoryLayout<T>.size))
    return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
  }

  /// Tells the kernel that `range` has been consumed, so its pages can be dropped.
  public func done(with range: Range<Int>) { advise(range, MADV_DONTNEED) }

  private func advise(_ range: Range<Int>, _ advice: Int32) {
    guard let base, !range.isEmpty else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = range.lowerBound / page * page
    let end = min(size, range.upperBound)
    madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
  }
}
