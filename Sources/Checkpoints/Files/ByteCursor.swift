/// A forward reader over a mapped file that checks every length against the bytes that remain
/// before reading or allocating anything, and reports where it failed.
struct ByteCursor {
  let file: MappedFile
  private(set) var offset: Int

  init(_ file: MappedFile, offset: Int = 0) {
    self.file = file
    self.offset = offset
  }

  var remaining: Int { file.size - offset }

  /// Fails unless `count` more bytes are available.
  func require(_ count: UInt64, _ what: @autoclosure () -> String) throws(CheckpointError) {
    guard count <= UInt64(remaining) else {
      throw .truncated(path: file.path, offset: offset, needed: count, available: remaining, what: what())
    }
  }

  mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(CheckpointError) -> T {
    try require(UInt64(MemoryLayout<T>.size), what())
    let value = try file.load(T.self, at: offset)
    offset += MemoryLayout<T>.size
    return value
  }

  /// A GGUF string: u64 length, then that many bytes of UTF-8.
  mutating func readString(_ what: @autoclosure () -> String) throws(CheckpointError) -> String {
    let start = offset
    let length = try read(UInt64.self, "length of \(what())")
    try require(length, what())
    let string = try file.withBytes(offset..<(offset + Int(length))) { String(validating: $0, as: UTF8.self) }
    guard let string else {
      throw .invalidUTF8(path: file.path, offset: start + 8)
    }
    offset += Int(length)
    return string
  }
}
