/// A parsed GGUF file (version 2 or 3): metadata, tensor infos and alignment, validated as
/// ggml's reader validates them (tensors in any order are accepted).
public struct GGUFFile: Sendable {
  /// The first 4 bytes of every GGUF file, read as a little-endian `UInt32`.
  public static let magic: UInt32 = 0x4655_4747  // "GGUF" read little-endian
  /// Data alignment in bytes when `general.alignment` is absent.
  public static let defaultAlignment = 32
  /// The longest tensor name ggml accepts, in UTF-8 bytes.
  public static let maxNameLength = 63

  /// The mapped file, which also holds the tensor data.
  public let file: MappedFile
  /// The GGUF version at byte offset 4: 2 or 3.
  public let version: UInt32
  /// Key/values in file order.
  public let metadata: [(key: String, value: GGUFValue)]
  /// Tensors in header order.
  public let tensors: [Tensor]
  /// Data alignment in bytes (`general.alignment`, or 32 without it); tensor offsets are multiples of it.
  public let alignment: Int
  /// Absolute offset of the data section.
  public let dataStart: Int

  /// Maps and parses the GGUF file at `path` (see ``init(file:)``).
  /// - Parameter path: the file.
  /// - Throws: ``CheckpointError``: `io` when it cannot be mapped, and the header errors of
  ///   ``init(file:)``.
  /// - Complexity: O(header bytes); tensor data is mapped, not read.
  public init(path: String) throws(CheckpointError) {
    try self.init(file: MappedFile(path: path))
  }

  /// Parses the header of `file`: shapes become `ne` reversed (PyTorch order), data offsets absolute.
  ///
  /// Every count is checked against the bytes left before anything is reserved for it, and every tensor
  /// against the file's size.
  ///
  /// - Parameter file: the mapped file.
  /// - Throws: ``CheckpointError``, each with the offset, key or tensor at fault: `bad-magic`,
  ///   `wrong-byte-order`, `unsupported-version`, `count-too-large`, `truncated`, `empty-key`,
  ///   `duplicate-key`, `bad-value-type`, `nested-array`, `bad-alignment`, `tensor-name-too-long`,
  ///   `duplicate-tensor`, `too-many-dims`, `unknown-ggml-type`, `bad-block-multiple`,
  ///   `size-overflow`, `misaligned-offset`, `tensor-beyond-file`, `invalid-utf8`.
  /// - Complexity: O(header bytes) time and memory (metadata arrays such as a vocabulary included); no
  ///   tensor data is read.
  public init(file: MappedFile) throws(CheckpointError) {
    let path = file.path
    self.file = file
    var cursor = ByteCursor(file)
    let magic = try cursor.read(UInt32.self, "magic")
    guard magic == Self.magic else {
      let found = try file.withBytes(0..<4) { Array($0) }.map { byte in
        (0x20..<0x7F).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
      }.joined()
      throw .badMagic(path: path, found: "'\(found)'")
    }
    version = try cursor.read(UInt32.self, "version")
    if version != 0, version & 0xFFFF == 0 { throw .wrongByteOrder(path: path, version: version) }
    guard version == 2 || version == 3 else { throw .unsupportedVersion(path: path, version: version) }

    let countsOffset = cursor.offset
    let tensorCount = try cursor.read(UInt64.self, "tensor count")
    let kvCount = try cursor.read(UInt64.self, "metadata count")
    // Every entry takes some bytes: refuse counts the file cannot hold before reserving anything.
    guard kvCount <= UInt64(cursor.remaining / 13) else {
      throw .countTooLarge(path: path, what: "metadata count", count: kvCount, offset: countsOffset + 8)
    }
    guard tensorCount <= UInt64(cursor.remaining / 24) else {
      throw .countTooLarge(path: path, what: "tensor count", count: tensorCount, offset: countsOffset)
    }

    let (metadata, alignment) = try Self.readMetadata(&cursor, count: Int(kvCount))
    let infos = try Self.readTensorInfos(&cursor, count: Int(tensorCount), alignment: alignment)
    let headerEnd = cursor.offset
    dataStart = (headerEnd + alignment - 1) / alignment * alignment
    self.metadata = metadata
    self.tensors = try Self.tensors(infos, dataStart: dataStart, in: file)
    self.alignment = alignment
  }

  /// A tensor as the header describes it: `ne` in ggml order, `offset` within the data section.
  private typealias TensorHeader = (name: String, dtype: DType, ne: [UInt64], offset: UInt64, size: UInt64)

  /// Reads `count` metadata key/values (unique, non-empty keys) and the alignment they set.
  private static func readMetadata(_ cursor: inout ByteCursor, count: Int) throws(CheckpointError) -> (
    metadata: [(key: String, value: GGUFValue)], alignment: Int
  ) {
    let path = cursor.file.path
    var metadata: [(key: String, value: GGUFValue)] = []
    var keys = Set<String>()
    var alignment = Self.defaultAlignment
    for index in 0..<count {
      let keyOffset = cursor.offset
      let key = try cursor.readString("key of metadata entry \(index)")
      guard !key.isEmpty else { throw .emptyKey(path: path, offset: keyOffset) }
      guard keys.insert(key).inserted else { throw .duplicateKey(path: path, key: key, offset: keyOffset) }
      let value = try Self.readValue(&cursor, key: key)
      if key == "general.alignment" {
        guard case let .u32(requested) = value else {
          throw .badAlignment(path: path, message: "must be a u32, found \(value.type.name)")
        }
        guard requested != 0, requested & (requested - 1) == 0 else {
          throw .badAlignment(path: path, message: "\(requested) is not a non-zero power of two")
        }
        alignment = Int(requested)
      }
      metadata.append((key, value))
    }
    return (metadata, alignment)
  }

  /// Reads `count` tensor infos: unique names ggml accepts, at most 4 dimensions, a known type
  /// whose block divides `ne[0]`, a size that fits 63 bits and an offset on `alignment`.
  private static func readTensorInfos(_ cursor: inout ByteCursor, count: Int, alignment: Int)
    throws(CheckpointError) -> [TensorHeader]
  {
    let path = cursor.file.path
    var infos: [TensorHeader] = []
    var names = Set<String>()
    for index in 0..<count {
      let name = try cursor.readString("name of tensor \(index)")
      guard name.utf8.count <= Self.maxNameLength else {
        throw .tensorNameTooLong(path: path, tensor: name, length: name.utf8.count)
      }
      guard names.insert(name).inserted else { throw .duplicateTensor(path: path, tensor: name) }
      let dimensions = try cursor.read(UInt32.self, "dimension count of '\(name)'")
      guard dimensions <= 4 else { throw .tooManyDimensions(path: path, tensor: name, dimensions: dimensions) }
      var ne: [UInt64] = []
      for axis in 0..<Int(dimensions) { ne.append(try cursor.read(UInt64.self, "ne[\(axis)] of '\(name)'")) }
      let typeID = try cursor.read(UInt32.self, "type of '\(name)'")
      guard let dtype = DType(ggmlType: typeID) else { throw .unknownGGMLType(path: path, tensor: name, type: typeID) }
      let blockSize = dtype.block.elements
      if let first = ne.first, first % UInt64(blockSize) != 0 {
        throw .badBlockMultiple(path: path, tensor: name, ne0: first, blockSize: blockSize)
      }
      guard ne.allSatisfy({ $0 <= UInt64(Int64.max) }), let elements = elementCount(ne), elements <= UInt64(Int64.max),
        let size = dtype.byteCount(elements: elements)
      else {
        throw .sizeOverflow(path: path, tensor: name, shape: ne)
      }
      let offset = try cursor.read(UInt64.self, "data offset of '\(name)'")
      guard offset % UInt64(alignment) == 0 else {
        throw .misalignedOffset(path: path, tensor: name, offset: offset, alignment: alignment)
      }
      infos.append((name, dtype, ne, offset, size))
    }
    return infos
  }

  /// The tensors of `infos`, each checked to end within `file` (shapes in PyTorch order,
  /// offsets absolute).
  private static func tensors(_ infos: [TensorHeader], dataStart: Int, in file: MappedFile) throws(CheckpointError)
    -> [Tensor]
  {
    var tensors: [Tensor] = []
    tensors.reserveCapacity(infos.count)
    for info in infos {
      let (start, overflowStart) = UInt64(dataStart).addingReportingOverflow(info.offset)
      let (end, overflowEnd) = start.addingReportingOverflow(info.size)
      guard !overflowStart, !overflowEnd, end <= UInt64(file.size) else {
        throw .tensorBeyondFile(
          path: file.path, tensor: info.name, end: overflowStart || overflowEnd ? .max : end, fileSize: file.size)
      }
      tensors.append(
        Tensor(
          name: info.name, dtype: info.dtype, shape: info.ne.reversed().map { Int($0) },
          offset: Int(start), byteCount: Int(info.size), file: file))
    }
    return tensors
  }

  /// The value of a metadata key.
  /// - Parameter key: a metadata key such as `general.architecture`.
  /// - Complexity: O(n) in the number of metadata entries.
  public subscript(key: String) -> GGUFValue? { metadata.first { $0.key == key }?.value }

  private static func readValue(_ cursor: inout ByteCursor, key: String) throws(CheckpointError) -> GGUFValue {
    let typeOffset = cursor.offset
    let rawType = try cursor.read(UInt32.self, "value type of '\(key)'")
    guard let type = GGUFValueType(rawValue: rawType) else {
      throw .badValueType(path: cursor.file.path, key: key, type: rawType, offset: typeOffset)
    }
    if type != .array { return try readScalar(&cursor, type: type, key: key) }

    let elementOffset = cursor.offset
    let rawElement = try cursor.read(UInt32.self, "array element type of '\(key)'")
    guard let element = GGUFValueType(rawValue: rawElement) else {
      throw .badValueType(path: cursor.file.path, key: key, type: rawElement, offset: elementOffset)
    }
    guard element != .array else { throw .nestedArray(path: cursor.file.path, key: key, offset: elementOffset) }
    let countOffset = cursor.offset
    let count = try cursor.read(UInt64.self, "array length of '\(key)'")
    // Check the claimed length against the bytes left before reserving room for it.
    let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(element.minimumSize))
    guard !overflow, needed <= UInt64(cursor.remaining) else {
      throw .truncated(
        path: cursor.file.path, offset: countOffset, needed: overflow ? .max : needed, available: cursor.remaining,
        what: "array '\(key)' of \(count) \(element.name) values")
    }
    var values: [GGUFValue] = []
    values.reserveCapacity(Int(count))
    for _ in 0..<Int(count) { values.append(try readScalar(&cursor, type: element, key: key)) }
    return .array(element, values)
  }

  private static func readScalar(_ cursor: inout ByteCursor, type: GGUFValueType, key: String) throws(CheckpointError)
    -> GGUFValue
  {
    let what = "value of '\(key)'"
    switch type {
    case .u8: return .u8(try cursor.read(UInt8.self, what))
    case .i8: return .i8(try cursor.read(Int8.self, what))
    case .u16: return .u16(try cursor.read(UInt16.self, what))
    case .i16: return .i16(try cursor.read(Int16.self, what))
    case .u32: return .u32(try cursor.read(UInt32.self, what))
    case .i32: return .i32(try cursor.read(Int32.self, what))
    case .f32: return .f32(Float(bitPattern: try cursor.read(UInt32.self, what)))
    case .bool:
      // ggml accepts any non-zero byte; gguf-py writes 0 or 1.
      return .bool(try cursor.read(UInt8.self, what) != 0)
    case .string: return .string(try cursor.readString(what))
    case .u64: return .u64(try cursor.read(UInt64.self, what))
    case .i64: return .i64(try cursor.read(Int64.self, what))
    case .f64: return .f64(Double(bitPattern: try cursor.read(UInt64.self, what)))
    case .array: preconditionFailure("arrays are read by readValue")
    }
  }
}
