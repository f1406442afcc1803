extension Tensor {
  /// A tensor held in memory rather than read from a file, for a program that builds its adapters
  /// itself: `values`, row-major in `shape`, rounded once to `dtype`. Its bytes live as long as the
  /// tensor.
  ///
  /// ```swift
  /// let a = try Tensor(name: "lora_A", shape: [2, 3], values: [1, 0, 0, 0, 1, 0])
  /// ```
  ///
  /// - Parameters:
  ///   - name: the tensor's name (also its path in error messages).
  ///   - shape: dimensions, outermost first.
  ///   - values: the elements, row-major; exactly as many as `shape` holds.
  ///   - dtype: F32 (default), F16, BF16 or F64.
  /// - Throws: ``CheckpointError``: `.badEntry` when `values` does not fill `shape`,
  ///   `.unsupportedDType` for a dtype that is not F32, F16, BF16 or F64, `io` when memory cannot be
  ///   reserved.
  /// - Complexity: O(`values.count`) time and memory.
  public init(name: String, shape: [Int], values: [Float], dtype: DType = .f32) throws(CheckpointError) {
    guard dtype.isPlainFloat else {
      throw .unsupportedDType(path: name, tensor: name, dtype: dtype.rawValue, operation: "hold in memory")
    }
    guard let count = Checkpoints.elementCount(shape), count == values.count,
      let bytes = dtype.byteCount(elements: UInt64(count)).map(Int.init)
    else {
      throw .badEntry(path: name, tensor: name, message: "\(values.count) values do not fill shape \(shape)")
    }
    let file = try MappedFile(anonymousFor: name, count: bytes) { buffer in
      FloatConversion.narrow(values, to: dtype, into: buffer)
    }
    self.init(name: name, dtype: dtype, shape: shape, offset: 0, byteCount: bytes, file: file)
  }
}
