extension Tensor {
  /// The same bytes seen with another shape of the same element count (a conv factor `[r, in, kh, kw]`
  /// as the matrix `[r, in * kh * kw]`). Row-major data needs no copy for such a view.
  ///
  /// - Parameters:
  ///   - shape: the new dimensions, outermost first.
  ///   - name: the view's name (this tensor's when nil).
  /// - Returns: the view, or nil when `shape`'s element count differs (or overflows).
  /// - Complexity: O(dimensions); no data is read.
  public func reshaped(_ shape: [Int], name: String? = nil) -> Tensor? {
    guard let count = Checkpoints.elementCount(shape), count == elementCount else { return nil }
    return Tensor(name: name ?? self.name, dtype: dtype, shape: shape, offset: offset, byteCount: byteCount, file: file)
  }

  /// The transpose of a 2-D tensor, its elements copied bit for bit into memory (any dtype of
  /// whole-byte elements: F32, F16, BF16, F64, F8, integers).
  ///
  /// Used for factors stored transposed against PyTorch's `[out, in]` (MLX's `lora_a` `[in, r]`): LoRA
  /// factors are small, so a copy costs little and every reader after it sees the usual row-major
  /// layout.
  ///
  /// - Parameter name: the copy's name (this tensor's when nil).
  /// - Returns: a tensor of shape `[cols, rows]` held in memory.
  /// - Throws: ``CheckpointError``: `.unsupportedDType` for block-quantised or sub-byte dtypes,
  ///   `.badEntry` when the tensor is not 2-D, `io` when the data cannot be read or memory reserved.
  /// - Complexity: O(`byteCount`) time and memory.
  public func transposedCopy(name: String? = nil) throws(CheckpointError) -> Tensor {
    guard shape.count == 2 else {
      throw .badEntry(
        path: file.path, tensor: self.name, message: "only a 2-D tensor can be transposed, shape \(shape)")
    }
    guard dtype.block.elements == 1, let bits = dtype.bitsPerElement, bits % 8 == 0 else {
      throw .unsupportedDType(path: file.path, tensor: self.name, dtype: dtype.rawValue, operation: "transpose")
    }
    let (rows, cols, width) = (shape[0], shape[1], bits / 8)
    let copy = try withBytes { source throws(CheckpointError) in
      try MappedFile(anonymousFor: file.path, count: byteCount) { target in
        for row in 0..<rows {
          for col in 0..<cols {
            let from = (row * cols + col) * width
            let to = (col * rows + row) * width
            for byte in 0..<width { target[to + byte] = source[from + byte] }
          }
        }
      }
    }
    return Tensor(
      name: name ?? self.name, dtype: dtype, shape: [cols, rows], offset: 0, byteCount: byteCount, file: copy)
  }

  /// The value of a tensor holding one number (shape `[]`, `[1]`, `[1, 1]`...), widened to `Double`
  /// (kohya's `alpha` tensors are such scalars).
  ///
  /// - Returns: the number; nil when the tensor holds another count of elements, or a dtype that is not
  ///   numbers.
  /// - Throws: ``CheckpointError``: `io` when the file cannot be mapped again.
  public func scalarValue() throws(CheckpointError) -> Double? {
    guard elementCount == 1, shape.allSatisfy({ $0 == 1 }), dtype.isComputable || dtype.isInteger else { return nil }
    if dtype.isInteger {
      return try withBytes { raw -> Double? in
        switch dtype {
        case .u8: Double(raw.load(as: UInt8.self))
        case .i8: Double(raw.load(as: Int8.self))
        case .i16: Double(Int16(littleEndian: raw.loadUnaligned(as: Int16.self)))
        case .u16: Double(UInt16(littleEndian: raw.loadUnaligned(as: UInt16.self)))
        case .i32: Double(Int32(littleEndian: raw.loadUnaligned(as: Int32.self)))
        case .u32: Double(UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)))
        case .i64: Double(Int64(littleEndian: raw.loadUnaligned(as: Int64.self)))
        case .u64: Double(UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self)))
        default: nil
        }
      }
    }
    if dtype == .f64 {
      return try withBytes { Double(bitPattern: UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
    }
    return try floats().first.map(Double.init)
  }
}
