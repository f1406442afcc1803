import CZlib

/// The entries of a zip archive (the container of `torch.save` since PyTorch 1.6), read from
/// its central directory and checked against the file before anything is used: every count
/// and offset is bounded by the bytes the file holds, entries may not overlap, and only stored
/// (uncompressed) entries are served, mapped in place like safetensors data.
///
/// Written here rather than with ZIPFoundation: serving tensor bytes without a copy needs each
/// entry's offset in the mapped file, which a stream-oriented reader does not give.
struct ZipArchive {
  struct Entry {
    let name: String
    let method: UInt16
    let crc: UInt32
    /// Bytes once inflated (for a stored entry, its bytes in the file).
    let size: Int
    let compressedSize: Int
    /// Absolute offset of the entry's bytes in the file.
    let dataOffset: Int
  }

  let file: MappedFile
  let entries: [Entry]
  /// Each entry by name (the first of a repeated one): a state dict of 10^5 tensors finds its
  /// storages in linear time.
  private let byName: [String: Entry]

  static let localSignature: UInt32 = 0x0403_4B50
  private static let centralSignature: UInt32 = 0x0201_4B50
  private static let endSignature: UInt32 = 0x0605_4B50
  private static let end64Signature: UInt32 = 0x0606_4B50
  private static let locator64Signature: UInt32 = 0x0706_4B50

  init(file: MappedFile) throws(CheckpointError) {
    self.file = file
    let path = file.path
    func fail(_ message: String) -> CheckpointError { .badArchive(path: path, message: message) }
    let (count, directoryOffset, directorySize) = try Self.centralDirectory(of: file)

    // Local headers are scattered through the file, one before each storage: read with pread,
    // not through the map, whose fault-around would make the pages near each one resident.
    let fd = try file.openAgain()
    defer { close(fd) }
    func localHeader(at offset: Int) throws(CheckpointError) -> [UInt8] {
      var header = [UInt8](repeating: 0, count: 30)
      let read = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 30, off_t(offset)) }
      guard read == 30 else { throw fail("a local header at \(offset) cannot be read") }
      return header
    }
    var entries: [Entry] = []
    entries.reserveCapacity(count)
    var cursor = directoryOffset
    let directoryEnd = directoryOffset + directorySize
    for index in 0..<count {
      guard cursor + 46 <= directoryEnd, try file.load(UInt32.self, at: cursor) == Self.centralSignature else {
        throw fail("central directory entry \(index) is not where the directory says")
      }
      let (entry, next) = try Self.entry(
        in: file, at: cursor, index: index, directoryEnd: directoryEnd, localHeader: localHeader)
      entries.append(entry)
      cursor = next
    }
    // Entries may not share bytes (a crafted archive could make one storage alias a header).
    let sorted = entries.sorted { $0.dataOffset < $1.dataOffset }
    for (one, other) in zip(sorted, sorted.dropFirst()) where one.dataOffset + one.compressedSize > other.dataOffset {
      throw fail("entries '\(one.name)' and '\(other.name)' overlap")
    }
    self.entries = entries
    byName = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
  }

  /// The central directory's entry count, offset and size, from the end record (ZIP64's when
  /// the fixed fields are saturated), each checked to lie in the file.
  private static func centralDirectory(of file: MappedFile) throws(CheckpointError) -> (
    count: Int, offset: Int, size: Int
  ) {
    let path = file.path
    func fail(_ message: String) -> CheckpointError { .badArchive(path: path, message: message) }
    guard file.size >= 22 else { throw fail("\(file.size) bytes, shorter than a zip's end record") }

    // The end record: the last signature within its 22 bytes plus a comment of at most 64 KB.
    var end = file.size - 22
    let lowest = max(0, file.size - 22 - 0xFFFF)
    while try file.load(UInt32.self, at: end) != Self.endSignature {
      guard end > lowest else { throw fail("no end of central directory record") }
      end -= 1
    }
    var count = Int(try file.load(UInt16.self, at: end + 10))
    var directorySize = Int(try file.load(UInt32.self, at: end + 12))
    var directoryOffset = Int(try file.load(UInt32.self, at: end + 16))
    if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
      // ZIP64: the locator just before the end record points at the 64-bit end record.
      guard end >= 20, try file.load(UInt32.self, at: end - 20) == Self.locator64Signature else {
        throw fail("a ZIP64 archive without its ZIP64 locator")
      }
      let record = try file.load(UInt64.self, at: end - 12)
      guard file.size >= 56, record <= UInt64(file.size - 56),
        try file.load(UInt32.self, at: Int(record)) == Self.end64Signature
      else {
        throw fail("the ZIP64 end record lies outside the file")
      }
      let (count64, size64, offset64) = (
        try file.load(UInt64.self, at: Int(record) + 32), try file.load(UInt64.self, at: Int(record) + 40),
        try file.load(UInt64.self, at: Int(record) + 48)
      )
      guard count64 <= UInt64(file.size), size64 <= UInt64(file.size), offset64 <= UInt64(file.size) else {
        throw fail("ZIP64 counts beyond the file (\(count64) entries, \(size64) bytes at \(offset64))")
      }
      (count, directorySize, directoryOffset) = (Int(count64), Int(size64), Int(offset64))
    }
    guard file.contains(offset: directoryOffset, count: directorySize), directorySize >= count * 46 else {
      throw fail(
        "a central directory of \(count) entries in \(directorySize) bytes at \(directoryOffset) does not fit the file")
    }
    return (count, directoryOffset, directorySize)
  }

  /// The central directory entry at `cursor` (its signature checked), checked against its local
  /// header, and where the next one starts.
  private static func entry(
    in file: MappedFile, at cursor: Int, index: Int, directoryEnd: Int,
    localHeader: (Int) throws(CheckpointError) -> [UInt8]
  ) throws(CheckpointError) -> (entry: Entry, next: Int) {
    let path = file.path
    func fail(_ message: String) -> CheckpointError { .badArchive(path: path, message: message) }
    let flags = try file.load(UInt16.self, at: cursor + 8)
    let method = try file.load(UInt16.self, at: cursor + 10)
    let crc = try file.load(UInt32.self, at: cursor + 16)
    var compressed = UInt64(try file.load(UInt32.self, at: cursor + 20))
    var size = UInt64(try file.load(UInt32.self, at: cursor + 24))
    let nameLength = Int(try file.load(UInt16.self, at: cursor + 28))
    let extraLength = Int(try file.load(UInt16.self, at: cursor + 30))
    let commentLength = Int(try file.load(UInt16.self, at: cursor + 32))
    var local = UInt64(try file.load(UInt32.self, at: cursor + 42))
    let next = cursor + 46 + nameLength + extraLength + commentLength
    guard next <= directoryEnd else { throw fail("central directory entry \(index) runs past the directory") }
    let nameBytes = try file.withBytes((cursor + 46)..<(cursor + 46 + nameLength)) { Array($0) }
    guard let name = String(validating: nameBytes, as: UTF8.self) else {
      throw fail("entry \(index) has a name that is not UTF-8")
    }
    // ZIP64 extra field: the 64-bit sizes and offset, for those the fixed fields mark 0xFFFFFFFF.
    var extra = cursor + 46 + nameLength
    let extraEnd = extra + extraLength
    while extra + 4 <= extraEnd {
      let id = try file.load(UInt16.self, at: extra)
      let length = Int(try file.load(UInt16.self, at: extra + 2))
      guard extra + 4 + length <= extraEnd else { throw fail("entry '\(name)' has an extra field past its end") }
      if id == 1 {
        var field = extra + 4
        if size == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
          size = try file.load(UInt64.self, at: field)
          field += 8
        }
        if compressed == 0xFFFF_FFFF, field + 8 <= extra + 4 + length {
          compressed = try file.load(UInt64.self, at: field)
          field += 8
        }
        if local == 0xFFFF_FFFF, field + 8 <= extra + 4 + length { local = try file.load(UInt64.self, at: field) }
      }
      extra += 4 + length
    }
    guard flags & 1 == 0 else { throw fail("entry '\(name)' is encrypted") }
    guard file.size >= 30, local <= UInt64(file.size - 30) else {
      throw fail("entry '\(name)': its local header is not at \(local)")
    }
    let header = try localHeader(Int(local))
    func field(_ at: Int, _ width: Int) -> Int { (0..<width).reduce(0) { $0 | Int(header[at + $1]) << (8 * $1) } }
    guard UInt32(field(0, 4)) == Self.localSignature else {
      throw fail("entry '\(name)': its local header is not at \(local)")
    }
    let localName = field(26, 2)
    let localExtra = field(28, 2)
    let dataOffset = Int(local) + 30 + localName + localExtra
    guard compressed <= UInt64(Int.max), file.contains(offset: dataOffset, count: Int(compressed)) else {
      throw fail(
        "entry '\(name)': \(compressed) bytes at \(dataOffset) run past the end of the file (\(file.size) bytes)")
    }
    guard method == 0 || method == 8 else {
      throw fail("entry '\(name)' uses compression method \(method) (stored or deflated only)")
    }
    if method == 0, compressed != size {
      throw fail("entry '\(name)' is stored but claims \(size) bytes in \(compressed)")
    }
    guard size <= UInt64(Int.max) else { throw fail("entry '\(name)' claims \(size) bytes") }
    let entry = Entry(
      name: name, method: method, crc: crc, size: Int(size), compressedSize: Int(compressed), dataOffset: dataOffset)
    return (entry, next)
  }

  /// The entry named `name`, if any.
  func entry(_ name: String) -> Entry? { byName[name] }

  /// Deflate expands at most 1032:1: an entry claiming more is a zip bomb, refused unread.
  static let maxExpansion = 1032

  /// A stored entry's bytes, or a deflated one's inflated, checked against its CRC-32.
  func checkedBytes(_ entry: Entry) throws(CheckpointError) -> [UInt8] {
    try checkClaimedSize(entry)
    var bytes = [UInt8](repeating: 0, count: entry.size)
    try bytes.withUnsafeMutableBytes { buffer in Result { () throws(CheckpointError) in try read(entry, into: buffer) }
    }.get()
    return bytes
  }

  /// Writes `entry`'s bytes (exactly `entry.size`) into `buffer`, inflating a deflated one, and
  /// checks them against its CRC-32.
  func read(_ entry: Entry, into buffer: UnsafeMutableRawBufferPointer) throws(CheckpointError) {
    precondition(buffer.count == entry.size)
    let path = file.path
    let range = entry.dataOffset..<(entry.dataOffset + entry.compressedSize)
    try checkClaimedSize(entry)
    if entry.method == 0 {
      try file.withBytes(range) { source in buffer.copyMemory(from: source) }
    } else {
      try file.withBytes(range) { source throws(CheckpointError) in
        try Self.inflate(source, into: buffer, entry: entry.name, path: path)
      }
    }
    let actual = crc32(UnsafeRawBufferPointer(buffer))
    guard actual == entry.crc else {
      throw .badArchive(path: path, message: "entry '\(entry.name)' fails its CRC-32 check (corrupt or truncated)")
    }
  }

  /// Refuses, before anything is allocated for it, a deflated entry claiming more bytes than
  /// deflate can make of its compressed ones.
  func checkClaimedSize(_ entry: Entry) throws(CheckpointError) {
    guard entry.method != 0 else { return }
    let (limit, overflow) = entry.compressedSize.multipliedReportingOverflow(by: Self.maxExpansion)
    guard overflow || entry.size <= limit + 1024 else {
      throw .badArchive(
        path: file.path,
        message:
          "entry '\(entry.name)' claims \(entry.size) bytes from \(entry.compressedSize): more than deflate can expand (a zip bomb)"
      )
    }
  }

  /// Raw deflate (zip's method 8) of `source` into exactly `buffer`, by zlib.
  private static func inflate(
    _ source: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer, entry: String, path: String
  ) throws(CheckpointError) {
    var stream = z_stream()
    guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
      throw .badArchive(path: path, message: "entry '\(entry)': zlib cannot start")
    }
    defer { inflateEnd(&stream) }
    stream.next_in = UnsafeMutablePointer(mutating: source.baseAddress?.assumingMemoryBound(to: UInt8.self))
    stream.avail_in = uInt(clamping: source.count)
    stream.next_out = buffer.baseAddress?.assumingMemoryBound(to: UInt8.self)
    stream.avail_out = uInt(clamping: buffer.count)
    let status = CZlib.inflate(&stream, Z_FINISH)
    guard status == Z_STREAM_END, Int(stream.total_out) == buffer.count else {
      throw .badArchive(
        path: path,
        message:
          "entry '\(entry)' does not inflate to its \(buffer.count) bytes (zlib status \(status), \(stream.total_out) bytes)"
      )
    }
  }
}
