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
    /// Bytes the caller supplies once the file is laid out, through the ``TensorSink`` a
    /// writer's `open` returns: for data computed elsewhere, in an order the writer does not set
    /// (a merge's solved modules, handed over as they are solved).
    case supplied(Supply)
  }

  /// What identifies a supplied tensor to its ``TensorSink``, and the order of its rows.
  public struct Supply: Sendable {
    /// The name the supplier gives (the tensor's name when it was laid out; a renaming keeps it).
    public let key: String
    /// Output row `i` is row `rowOrder[i]` of what the supplier gives; nil: the same order.
    public let rowOrder: [Int]?

    /// Supplied under `key`, rows in the order given (`rowOrder` nil) or permuted.
    /// - Parameters:
    ///   - key: the name the supplier hands the bytes over by.
    ///   - rowOrder: output row `i` is the supplier's row `rowOrder[i]` (llama.cpp's q/k row order);
    ///     nil for the same order.
    public init(key: String, rowOrder: [Int]? = nil) {
      self.key = key
      self.rowOrder = rowOrder
    }
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

  /// An output whose bytes `source` provides (exactly ``byteCount`` of them).
  /// - Parameters:
  ///   - name: the name written in the output header.
  ///   - dtype: the element type of the output bytes.
  ///   - shape: dimensions in PyTorch order, outermost first.
  ///   - source: where the bytes come from.
  public init(name: String, dtype: DType, shape: [Int], source: Source) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.source = source
  }

  /// An output holding `values` rounded once to `dtype` (computed when written).
  /// - Parameters:
  ///   - name: the name written in the output header.
  ///   - dtype: a plain float dtype (F32, F16, BF16, F64).
  ///   - shape: dimensions in PyTorch order; `values` fills it.
  ///   - values: the elements, row-major.
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

  /// Whether the caller supplies the bytes through a ``TensorSink``.
  public var isSupplied: Bool {
    if case .supplied = source { return true }
    return false
  }

  /// Any range of rows on demand, whatever the source (a `.compute` tensor is computed whole,
  /// once). A supplied tensor has no rows to give: its bytes come through a ``TensorSink``.
  /// - Returns: a function that fills any range of rows into a buffer of their size.
  /// - Throws: what the source's preparation throws (a `.compute` tensor is computed here).
  /// - Complexity: O(1) for `.copy` and `.rows`; O(``byteCount``) time and memory for `.compute`.
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
    case let .supplied(supply):
      preconditionFailure("\(name): supplied through a TensorSink (\(supply.key)), it has no rows to read")
    }
  }
}

/// Called with the number of bytes just written, from any thread.
public typealias ProgressHandler = @Sendable (Int) -> Void
