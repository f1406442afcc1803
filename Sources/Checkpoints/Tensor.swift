/// One tensor of a checkpoint: its name, element type, shape, and where its bytes lie.
///
/// `shape` is in PyTorch order (outermost first) for every format; for GGUF it is `ne` reversed.
/// The tensor keeps its mapped file alive, so its bytes can be read at any time.
public struct Tensor: Sendable {
  /// The name in the checkpoint (the state-dict key).
  public let name: String
  /// The element type of the bytes on disk.
  public let dtype: DType
  /// Dimensions in PyTorch order, outermost first (for GGUF, `ne` reversed); empty for a scalar.
  public let shape: [Int]
  /// Absolute byte offset of the data in `file`.
  public let offset: Int
  /// Length of the data in bytes, starting at `offset`.
  public let byteCount: Int
  /// The mapped file holding the data (for a deflated or strided PyTorch tensor, an in-memory copy).
  public let file: MappedFile

  /// A tensor whose `byteCount` bytes start at absolute byte offset `offset` of `file`. The caller must
  /// have checked that they lie inside it (``MappedFile/contains(offset:count:)``) and that `byteCount`
  /// is what `dtype` and `shape` need: readers and ``withBytes(_:_:)`` rely on it.
  ///
  /// - Parameters:
  ///   - name: the name in the checkpoint.
  ///   - dtype: the element type of the bytes.
  ///   - shape: dimensions in PyTorch order, outermost first.
  ///   - offset: the data's absolute byte offset in `file`.
  ///   - byteCount: the data's length in bytes.
  ///   - file: the mapped file (or memory) holding the data; the tensor keeps it alive.
  public init(name: String, dtype: DType, shape: [Int], offset: Int, byteCount: Int, file: MappedFile) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.offset = offset
    self.byteCount = byteCount
    self.file = file
  }

  /// The number of elements (the reader checked that the product fits; 0 for a zero dimension).
  public var elementCount: Int { Checkpoints.elementCount(shape) ?? 0 }

  /// Calls `body` with the raw bytes on disk, or those of `range` within them; the buffer is valid only
  /// inside `body`.
  ///
  /// Bounds were checked when the header was read; the file is mapped again first if its map was
  /// released (see ``MappedFile``).
  ///
  /// - Parameters:
  ///   - range: a byte range within the tensor's data (`0..<byteCount` when nil); it must lie inside (a
  ///     precondition).
  ///   - body: reads the bytes; what it returns is returned.
  /// - Returns: what `body` returns.
  /// - Throws: ``CheckpointError``: `io` when the file must be mapped again and cannot be, or has
  ///   changed on disk; or what `body` throws.
  /// - Complexity: O(1) itself; the pages `body` touches are read from disk.
  public func withBytes<Result>(
    _ range: Range<Int>? = nil, _ body: (UnsafeRawBufferPointer) throws(CheckpointError) -> Result
  ) throws(CheckpointError) -> Result {
    let range = range ?? 0..<byteCount
    precondition(range.lowerBound >= 0 && range.upperBound <= byteCount, "range outside the tensor")
    return try file.withBytes((offset + range.lowerBound)..<(offset + range.upperBound), body)
  }

  /// A copy of the raw bytes on disk.
  /// - Returns: the `byteCount` bytes, in the file's dtype and byte order.
  /// - Throws: ``CheckpointError``: `io` when the file cannot be mapped again.
  /// - Complexity: O(`byteCount`): every byte is read and copied into memory.
  public func copyBytes() throws(CheckpointError) -> [UInt8] { try withBytes { Array($0) } }

  /// Calls `body` with elements `elements` a slice at a time: each slice's element range and raw bytes,
  /// whose pages are released once `body` returns, so that reading a tensor of any size keeps little of
  /// it resident.
  ///
  /// - Parameters:
  ///   - elements: the elements to visit (all when nil); both ends block-aligned for quantised dtypes.
  ///   - slice: elements per call, a multiple of the dtype's block size (default 2^18).
  ///   - body: called with each slice's element range and its bytes.
  /// - Throws: ``CheckpointError``: `io` when the file cannot be mapped again; or what `body` throws.
  /// - Complexity: O(bytes of `elements`), read once; memory O(1) beyond what `body` keeps.
  public func forEachSlice(
    _ elements: Range<Int>? = nil, slice: Int = 1 << 18,
    _ body: (Range<Int>, UnsafeRawBufferPointer) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    let elements = elements ?? 0..<elementCount
    guard !elements.isEmpty else { return }
    let base = try file.beginReading()
    defer { file.endReading() }
    let bytes = UnsafeRawBufferPointer(start: base.map { $0 + offset }, count: byteCount)
    let (blockElements, blockBytes) = dtype.block
    var start = elements.lowerBound
    while start < elements.upperBound {
      let end = min(start + slice, elements.upperBound)
      let raw = (start / blockElements * blockBytes)..<(end / blockElements * blockBytes)
      try body(start..<end, UnsafeRawBufferPointer(rebasing: bytes[raw]))
      file.done(with: (offset + raw.lowerBound)..<(offset + raw.upperBound))
      start = end
    }
  }

  /// Widens elements `elements` a slice at a time into one reused `Float` buffer and calls `body` with
  /// each slice's element range, raw bytes and values; each slice's pages are released once `body`
  /// returns.
  ///
  /// The dtype must be one fedlora computes with (``DType/isComputable``: F32, F16, BF16, F64, F8,
  /// Q8_0, Q4_0).
  ///
  /// - Parameters:
  ///   - elements: the elements to visit (all when nil); both ends block-aligned for quantised dtypes.
  ///   - slice: elements per call, a multiple of the dtype's block size (default 2^18).
  ///   - body: called with each slice's element range, bytes and widened values (valid only inside the
  ///     call).
  /// - Throws: ``CheckpointError``: `io` when the file cannot be mapped again; or what `body` throws.
  /// - Complexity: O(elements) to widen, reading each byte once; memory O(`slice`) floats.
  public func forEachWidenedSlice(
    _ elements: Range<Int>? = nil, slice: Int = 1 << 18,
    _ body: (Range<Int>, UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) throws(CheckpointError) -> Void
  ) throws(CheckpointError) {
    let count = (elements ?? 0..<elementCount).count
    guard count > 0 else { return }
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: min(count, slice))
    defer { buffer.deallocate() }
    try forEachSlice(elements, slice: slice) { range, raw throws(CheckpointError) in
      let values = UnsafeMutableBufferPointer(rebasing: buffer[0..<range.count])
      Dequantize.widen(raw, dtype: dtype, count: range.count, into: values.baseAddress!)
      try body(range, raw, values)
    }
  }

  /// The values widened to `Float` (F16, BF16, F32, F64, F8, Q8_0, Q4_0).
  ///
  /// - Returns: every element, row-major in ``shape``.
  /// - Throws: ``CheckpointError/unsupportedDType(path:tensor:dtype:operation:)`` for a dtype that is
  ///   not numbers fedlora can widen (integers, other quantisations); `io` when the file cannot be
  ///   mapped again.
  /// - Complexity: O(elements) time and memory: the whole tensor is read and held as floats. For large
  ///   tensors prefer ``forEachWidenedSlice(_:slice:_:)``.
  public func floats() throws(CheckpointError) -> [Float] {
    guard dtype.isComputable else {
      throw .unsupportedDType(path: file.path, tensor: name, dtype: dtype.rawValue, operation: "convert to numbers")
    }
    let count = elementCount
    return try withBytes { bytes in
      [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
        if let base = buffer.baseAddress, count > 0 {
          Dequantize.widen(bytes, dtype: dtype, count: count, into: base)
        }
        initialized = count
      }
    }
  }
}
