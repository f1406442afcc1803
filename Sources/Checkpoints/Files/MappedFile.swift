#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// A read-only memory map of a whole file, with bounds-checked unaligned little-endian loads.
///
/// Nothing is copied: tensor data is read straight from the page cache, and pages the kernel
/// does not need stay on disk. Bytes are lent only inside `withBytes`, so the map can be
/// released while nobody reads it: when more files are open than `MapBudget` allows (a checkpoint
/// of 10^5 shards would pass the kernel's memory-map limit), idle maps are unmapped and mapped
/// again on the next read, after checking that the file is still the one that was opened.
public final class MappedFile: Sendable {
  /// The path the file was opened from (for memory standing in for a file, a description for errors).
  public let path: String
  /// The file's length in bytes when it was opened.
  public let size: Int
  private let identity: Identity
  private let state: Locked<State>
  /// Memory standing in for a file (``init(anonymousFor:count:fill:)``): never released.
  private let anonymous: Bool

  private struct State {
    /// The map, or nil while released (or for an empty file).
    var base: UnsafeRawPointer?
    /// Readers inside `withBytes` now; the map is never released while this is above 0.
    var readers = 0
    /// Whether the budget's idle queue holds this file already.
    var queued = false
  }

  /// What must not change between the first map and a later one.
  private struct Identity: Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int
    let modified: Int
    let modifiedNanoseconds: Int

    init(_ info: stat) {
      device = UInt64(info.st_dev)
      inode = UInt64(info.st_ino)
      size = Int(info.st_size)
      modified = Int(info.st_mtim.tv_sec)
      modifiedNanoseconds = Int(info.st_mtim.tv_nsec)
    }
  }

  /// Maps the regular file at `path` read-only; anything else (a folder, a FIFO, a device) is refused
  /// before it is opened.
  ///
  /// - Parameter path: the file to map (symlinks followed).
  /// - Throws: ``CheckpointError/io(path:message:)`` when it is missing or not a regular file, cannot
  ///   be opened, or cannot be mapped (out of address space or of the process's memory-map limit).
  /// - Complexity: O(1): pages are read only when touched.
  public init(path: String) throws(CheckpointError) {
    self.path = path
    let (base, info) = try Self.map(path)
    identity = Identity(info)
    size = identity.size
    anonymous = false
    let mapped = base != nil
    state = Locked(State(base: base, queued: mapped))
    if mapped {
      MapBudget.shared.didMap()
      MapBudget.shared.becameIdle(self)
    }
  }

  /// Memory standing in for a file: `count` bytes written once by `fill` (a deflated archive
  /// entry inflated, a strided tensor made contiguous) and read like a map. There is no file to
  /// map again, so it is never released to the budget, and `done(with:)` leaves it alone.
  init(anonymousFor path: String, count: Int, fill: (UnsafeMutableRawBufferPointer) throws(CheckpointError) -> Void)
    throws(CheckpointError)
  {
    self.path = path
    size = count
    identity = Identity(stat())
    anonymous = true
    var base: UnsafeRawPointer?
    if count > 0 {
      let pointer = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
      guard let pointer, pointer != MAP_FAILED else {
        throw .io(path: path, message: "cannot reserve \(count) bytes: \(systemError())")
      }
      do { try fill(UnsafeMutableRawBufferPointer(start: pointer, count: count)) } catch {
        munmap(pointer, count)
        throw error
      }
      base = UnsafeRawPointer(pointer)
    }
    state = Locked(State(base: base, queued: true))  // queued: never offered to the budget
  }

  deinit {
    state.withLock { state in
      if let base = state.base {
        munmap(UnsafeMutableRawPointer(mutating: base), size)
        if !anonymous { MapBudget.shared.didUnmap() }
      }
    }
  }

  /// Opens and maps `path`, refusing what is not a regular file before it is opened for reading
  /// (opening a FIFO blocks until a writer comes; O_NONBLOCK covers one swapped in meanwhile).
  private static func map(_ path: String) throws(CheckpointError) -> (UnsafeRawPointer?, stat) {
    var before = stat()
    guard stat(path, &before) == 0 else { throw .io(path: path, message: systemError()) }
    guard (before.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw .io(path: path, message: systemError()) }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .io(path: path, message: systemError()) }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
    guard info.st_size > 0 else { return (nil, info) }
    let pointer = mmap(nil, Int(info.st_size), PROT_READ, MAP_PRIVATE, fd, 0)
    guard let pointer, pointer != MAP_FAILED else {
      let reason =
        errno == ENOMEM
        ? "out of memory maps or address space (the process's memory-map limit, vm.max_map_count?)" : systemError()
      throw .io(path: path, message: "mmap failed: \(reason)")
    }
    return (UnsafeRawPointer(pointer), info)
  }

  /// A copy of a small file's bytes (configs, indexes, tokenizer files).
  /// - Parameter path: the file to read.
  /// - Returns: every byte of the file.
  /// - Throws: ``CheckpointError/io(path:message:)`` when it cannot be mapped (see ``init(path:)``).
  /// - Complexity: O(file size) time and memory; not for checkpoints, whose data is read through a map.
  public static func contents(of path: String) throws(CheckpointError) -> [UInt8] {
    let file = try MappedFile(path: path)
    return try file.withBytes(0..<file.size) { Array($0) }
  }

  /// Calls `body` with the bytes in `range`, mapping the file again first if its map was released. The
  /// buffer is valid only inside `body`.
  ///
  /// - Parameters:
  ///   - range: byte offsets within the file; it must lie inside (a precondition: check untrusted
  ///     ranges with ``contains(offset:count:)`` first).
  ///   - body: reads the bytes; what it returns is returned.
  /// - Returns: what `body` returns.
  /// - Throws: ``CheckpointError/io(path:message:)`` when the file must be mapped again and cannot be,
  ///   or has changed on disk since it was opened; or what `body` throws.
  /// - Complexity: O(1) itself; the pages `body` touches are read from disk.
  public func withBytes<Result>(
    _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
  ) throws(CheckpointError) -> Result {
    precondition(range.lowerBound >= 0 && range.upperBound <= size, "range outside the mapped file")
    let base = try beginReading()
    defer { endReading() }
    return try body(UnsafeRawBufferPointer(start: base.map { $0 + range.lowerBound }, count: range.count))
  }

  /// Whether `count` bytes starting at `offset` lie inside the file (overflow-safe): the check to make
  /// on every offset and length a header claims.
  /// - Parameters:
  ///   - offset: the first byte.
  ///   - count: the number of bytes.
  /// - Returns: false for negative values or a range past the end.
  public func contains(offset: Int, count: Int) -> Bool {
    offset >= 0 && count >= 0 && offset <= size && count <= size - offset
  }

  /// An unaligned little-endian load at `offset`; the caller has checked the bounds (a precondition).
  /// - Parameters:
  ///   - type: the integer type to load (`UInt32.self`).
  ///   - offset: the byte offset of the value.
  /// - Returns: the value, in host byte order.
  /// - Throws: ``CheckpointError/io(path:message:)`` when the file must be mapped again and cannot be.
  public func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws(CheckpointError) -> T {
    precondition(contains(offset: offset, count: MemoryLayout<T>.size))
    return try withBytes(offset..<(offset + MemoryLayout<T>.size)) { T(littleEndian: $0.loadUnaligned(as: T.self)) }
  }

  /// Tells the kernel that `range` has been consumed, so its pages can be dropped (`MADV_DONTNEED`);
  /// memory standing in for a file is left alone.
  /// - Parameter range: byte offsets already read.
  public func done(with range: Range<Int>) {
    // Dropping an anonymous map's pages would zero them.
    if !anonymous { advise(range, MADV_DONTNEED) }
  }

  private func advise(_ range: Range<Int>, _ advice: Int32) {
    state.withLock { state in
      guard let base = state.base, !range.isEmpty else { return }
      let page = Int(sysconf(Int32(_SC_PAGESIZE)))
      let start = range.lowerBound / page * page
      let end = min(size, range.upperBound)
      madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }
  }

  /// A descriptor for reading the file with `pread`, checked to be the file that was mapped.
  func openAgain() throws(CheckpointError) -> Int32 {
    guard !anonymous else { throw .io(path: path, message: "held in memory, not a file to read again") }
    var before = stat()
    guard stat(path, &before) == 0 else { throw .io(path: path, message: systemError()) }
    guard (before.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, message: "not a regular file") }
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { throw .io(path: path, message: systemError()) }
    var info = stat()
    guard fstat(fd, &info) == 0, Identity(info) == identity else {
      close(fd)
      throw .io(path: path, message: "the file changed on disk while fedlora was reading it")
    }
    return fd
  }

  // MARK: Lending the map

  /// Counts a reader in (mapping again if needed) and returns the map's base; pair it with
  /// `endReading()`. Within the module, for readers whose work throws other errors.
  func beginReading() throws(CheckpointError) -> UnsafeRawPointer? {
    let (base, remapped) = try state.withLock { state throws(CheckpointError) -> (UnsafeRawPointer?, Bool) in
      var remapped = false
      if state.base == nil, size > 0 {
        let (base, info) = try Self.map(path)
        guard Identity(info) == identity else {
          if let base { munmap(UnsafeMutableRawPointer(mutating: base), Int(info.st_size)) }
          throw .io(path: path, message: "the file changed on disk while fedlora was reading it")
        }
        state.base = base
        remapped = true
      }
      state.readers += 1
      return (state.base, remapped)
    }
    // Outside this file's lock: the budget may release other files' maps.
    if remapped { MapBudget.shared.didMap() }
    return base
  }

  func endReading() {
    let idle = state.withLock { state in
      state.readers -= 1
      guard state.readers == 0, state.base != nil, !state.queued else { return false }
      state.queued = true
      return true
    }
    if idle { MapBudget.shared.becameIdle(self) }
  }

  /// Unmaps the file if nobody is reading it (called by the budget, holding no other lock).
  func releaseIfIdle() {
    let released = state.withLock { state in
      state.queued = false
      guard state.readers == 0, let base = state.base else { return false }
      munmap(UnsafeMutableRawPointer(mutating: base), size)
      state.base = nil
      return true
    }
    if released { MapBudget.shared.didUnmap(released: true) }
  }
}
