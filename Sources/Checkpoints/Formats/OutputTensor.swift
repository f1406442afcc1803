/// A tensor to be written: its name, dtype, shape, and where its bytes come from.
public struct OutputTensor: Sendable {
  /// Where the output bytes come from.
  public enum Source: Sendable {
    /// The bytes of an input tensor, copied unchanged (same dtype and size).
    case copy(Tensor)
    /// A function that fills the output bytes (exactly `byteCount` of them). For small tensors.
    case compute(@Sendable (UnsafeMutableRawBufferPointer) throws -> Void)
    /// Rows (of the leading dimension) computed a range at a time: the writer prepares once,
    /// then asks for slices of a few MB, so memory does not grow with the tensor.
    case rows(@Sendable () throws -> RowFill)
    /// Part `index` of what one `JointFill` computes for several tensors (a solved module's two
    /// factors): computed once, when the writer comes to the first of them, and written whole.
    case part(JointFill, Int)
  }

  /// Fills the bytes of rows `range` (row `range.lowerBound` at the start of the buffer).
  public typealias RowFill = (Range<Int>, UnsafeMutableRawBufferPointer) throws -> Void

  /// The name written in the output header.
  public let name: String
  /// The element type of the output bytes.
  public let dtype: DType
  /// Dimensions in PyTorch order, outermost first (the GGUF writer stores them reversed as `ne`).
  public let shape: [Int]
  /// Where the bytes come from.
  public let source: Source

  /// An output whose bytes `source` provides (exactly `byteCount` of them).
  public init(name: String, dtype: DType, shape: [Int], source: Source) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.source = source
  }

  /// An output holding `values` rounded once to `dtype`.
  public init(name: String, dtype: DType, shape: [Int], values: [Float]) {
    self.init(
      name: name, dtype: dtype, shape: shape,
      source: .compute { buffer in
        FloatConversion.narrow(values, to: dtype, into: buffer)
      })
  }

  /// Bytes the shape and dtype take (whole blocks for quantised dtypes); 0 when the size overflows.
  public var byteCount: Int {
    guard let elements = elementCount(shape), let bytes = dtype.byteCount(elements: UInt64(elements)),
      bytes <= UInt64(Int.max)
    else { return 0 }
    return Int(bytes)
  }

  /// Rows of the leading dimension (1 for a scalar).
  public var rowCount: Int { shape.first ?? 1 }

  /// Bytes in one row of the leading dimension (0 when there are no rows).
  public var rowBytes: Int { rowCount == 0 ? 0 : byteCount / rowCount }

  /// Any range of rows on demand, whatever the source (a `.compute` tensor is computed whole, once).
  public func rowFill() throws -> RowFill {
    let rowBytes = rowBytes
    switch source {
    case let .copy(input):
      return { range, buffer in
        try input.withBytes((range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)) {
          buffer.copyMemory(from: $0)
        }
      }
    case let .compute(compute):
      var whole = [UInt8](repeating: 0, count: byteCount)
      try whole.withUnsafeMutableBytes { try compute($0) }
      return { [whole] range, buffer in
        whole[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)].withUnsafeBytes {
          buffer.copyMemory(from: $0)
        }
      }
    case let .rows(prepare): return try prepare()
    case let .part(fill, index):
      let whole = try fill.part(index, byteCount: byteCount)
      return { range, buffer in
        whole[(range.lowerBound * rowBytes)..<(range.upperBound * rowBytes)].withUnsafeBytes {
          buffer.copyMemory(from: $0)
        }
      }
    }
  }
}

/// Called with the number of bytes just written, from any thread.
public typealias ProgressHandler = @Sendable (Int) -> Void
