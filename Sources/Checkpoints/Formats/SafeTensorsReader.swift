/// A parsed safetensors file: metadata and the tensors of its header, validated as the
/// reference reader validates them.
public struct SafeTensorsFile: Sendable {
  /// The largest header length accepted, in bytes (the reference reader's limit).
  public static let maxHeaderLength: UInt64 = 100_000_000
  /// Most dimensions a shape may have: numpy 2 allows 64; a header's arrays (shapes, offsets)
  /// are bounded by this so a crafted shape cannot cost gigabytes before it is refused.
  public static let maxDimensions = 1_024

  /// The mapped file, which also holds the tensor data.
  public let file: MappedFile
  /// `__metadata__` in file order.
  public let metadata: [(key: String, value: String)]
  /// Tensors in data order (sorted by offset).
  public let tensors: [Tensor]
  /// Absolute offset of the data buffer.
  public let dataStart: Int

  /// Maps and parses the safetensors file at `path` (see ``init(file:)``).
  /// - Parameter path: the file.
  /// - Throws: ``CheckpointError``: `io` when it cannot be mapped, and the header errors of
  ///   ``init(file:)``.
  /// - Complexity: O(header bytes); tensor data is mapped, not read.
  public init(path: String) throws(CheckpointError) {
    try self.init(file: MappedFile(path: path))
  }

  /// Parses the header of `file` (a little-endian `UInt64` length at offset 0, then that many bytes of
  /// JSON) and checks that the tensors tile the data buffer exactly.
  ///
  /// - Parameter file: the mapped file.
  /// - Throws: ``CheckpointError``, each with the byte offset or tensor at fault: `file-too-small`,
  ///   `header-too-large` (over ``maxHeaderLength``), `header-beyond-file`, `invalid-utf8`,
  ///   `invalid-json`, `duplicate-key`, `bad-entry`, `unknown-dtype`, `size-overflow`, `size-mismatch`,
  ///   `bad-offsets`, `offset-gap`, `offset-overlap`, `trailing-bytes`, `data-truncated`,
  ///   `bad-metadata`.
  /// - Complexity: O(header bytes) time, memory a few times the header's size; no tensor data is read.
  public init(file: MappedFile) throws(CheckpointError) {
    let path = file.path
    self.file = file
    guard file.size >= 8 else { throw .fileTooSmall(path: path, size: file.size, needed: 8) }
    let headerLength = try file.load(UInt64.self, at: 0)
    guard headerLength <= Self.maxHeaderLength else {
      throw .headerTooLarge(path: path, claimed: headerLength, limit: Self.maxHeaderLength)
    }
    guard headerLength <= UInt64(file.size - 8) else {
      throw .headerBeyondFile(path: path, claimed: headerLength, fileSize: file.size)
    }
    dataStart = 8 + Int(headerLength)
    // The header is read member by member into compact entries: no JSON tree of the whole
    // header, so a crafted header of millions of entries costs a few times its size, not 20x.
    var metadata: [(key: String, value: String)] = []
    var parsed: [Entry] = []
    try file.withBytes(8..<dataStart) { header throws(CheckpointError) in
      try JSONParser.parseDocument(header, path: path, baseOffset: 8, maxArrayLength: Self.maxDimensions) {
        parser throws(CheckpointError) in
        guard parser.current == UInt8(ascii: "{") else {
          throw .invalidJSON(path: path, offset: 8, message: "the header is not a JSON object")
        }
        try parser.parseMembers(depth: 0) { name, _, parser throws(CheckpointError) in
          if name == "__metadata__" {
            metadata = try Self.parseMetadata(&parser, path: path)
          } else {
            parsed.append(try Self.parseEntry(name, parser.parseValue(depth: 1), path: path))
          }
        }
      }
    }

    // Tensors must tile the data buffer exactly, in offset order.
    parsed.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
    let bufferLength = UInt64(file.size - dataStart)
    var tensors: [Tensor] = []
    tensors.reserveCapacity(parsed.count)
    var expectedBegin: UInt64 = 0
    for entry in parsed {
      if entry.begin > expectedBegin {
        throw .offsetGap(path: path, tensor: entry.name, expectedBegin: expectedBegin, found: entry.begin)
      }
      if entry.begin < expectedBegin {
        throw .offsetOverlap(path: path, tensor: entry.name, expectedBegin: expectedBegin, found: entry.begin)
      }
      guard let elements = elementCount(entry.shape.lazy.map { UInt64($0) }),
        !elements.multipliedReportingOverflow(by: UInt64(entry.dtype.bitsPerElement ?? 8)).overflow
      else {
        throw .sizeOverflow(path: path, tensor: entry.name, shape: entry.shape.map { UInt64($0) })
      }
      // Sub-byte dtypes (F4, F6) must fill whole bytes.
      let needed = entry.dtype.byteCount(elements: elements) ?? UInt64.max
      guard entry.end - entry.begin == needed else {
        throw .sizeMismatch(path: path, tensor: entry.name, expectedBytes: needed, foundBytes: entry.end - entry.begin)
      }
      if entry.end > bufferLength {
        throw .dataTruncated(path: path, tensor: entry.name, dataEnd: entry.end, bufferLength: bufferLength)
      }
      tensors.append(
        Tensor(
          name: entry.name, dtype: entry.dtype, shape: entry.shape,
          offset: dataStart + Int(entry.begin), byteCount: Int(needed), file: file))
      expectedBegin = entry.end
    }
    guard expectedBegin == bufferLength else {
      throw .trailingBytes(path: path, dataEnd: expectedBegin, bufferLength: bufferLength)
    }
    self.metadata = metadata
    self.tensors = tensors
  }

  private struct Entry {
    let name: String
    let dtype: DType
    let shape: [Int]
    let begin: UInt64
    let end: UInt64
  }

  private static func parseMetadata(_ parser: inout JSONParser, path: String) throws(CheckpointError)
    -> [(key: String, value: String)]
  {
    // `"__metadata__": null` is no metadata: MLX writes it, and the reference reader (an
    // optional map) accepts it.
    if parser.current == UInt8(ascii: "n") {
      guard try parser.parseValue(depth: 2) == .null else {
        throw .badMetadata(path: path, message: "expected an object of strings or null")
      }
      return []
    }
    guard parser.current == UInt8(ascii: "{") else {
      throw .badMetadata(path: path, message: "expected an object of strings or null")
    }
    var result: [(key: String, value: String)] = []
    try parser.parseMembers(depth: 1) { key, _, parser throws(CheckpointError) in
      let value = try parser.parseValue(depth: 2)
      guard let string = value.stringValue else {
        if value.arrayValue != nil, key == "shape" || key == "data_offsets" {
          throw .badMetadata(path: path, message: "a tensor may not be named __metadata__")
        }
        throw .badMetadata(path: path, message: "value of '\(key)' is not a string")
      }
      result.append((key, string))
    }
    return result
  }

  private static func parseEntry(_ name: String, _ value: JSON, path: String) throws(CheckpointError) -> Entry {
    guard value.objectValue != nil else { throw .badEntry(path: path, tensor: name, message: "entry is not an object") }
    guard let dtypeName = value["dtype"]?.stringValue else {
      throw .badEntry(path: path, tensor: name, message: "missing or non-string 'dtype'")
    }
    guard let dtype = DType(safetensorsName: dtypeName) else {
      throw .unknownDType(path: path, tensor: name, name: dtypeName)
    }
    guard let shapeValues = value["shape"]?.arrayValue else {
      throw .badEntry(path: path, tensor: name, message: "missing or non-array 'shape'")
    }
    var shape: [Int] = []
    shape.reserveCapacity(shapeValues.count)
    for dimension in shapeValues {
      guard let size = dimension.uint64Value, size <= UInt64(Int.max) else {
        throw .badEntry(
          path: path, tensor: name, message: "shape dimension \(dimension.compactText) is not a non-negative integer")
      }
      shape.append(Int(size))
    }
    guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
      let begin = offsets[0].uint64Value, let end = offsets[1].uint64Value
    else {
      throw .badEntry(path: path, tensor: name, message: "'data_offsets' must be two non-negative integers")
    }
    guard end >= begin else { throw .badOffsets(path: path, tensor: name, begin: begin, end: end) }
    return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
  }
}
