extension Tensor {
  /// A tensor held in memory rather than read from a file, for a program that builds its
  /// adapters itself: `values`, row-major in `shape`, rounded once to `dtype` (a plain float
  /// type). Its bytes live as long as the tensor.
  ///
  /// ```swift
  /// let a = try Tensor(name: "lora_A", shape: [2, 3], values: [1, 0, 0, 0, 1, 0])
  /// ```
  ///
  /// - Throws: `CheckpointError.badEntry` when `values` does not fill `shape`,
  ///   `.unsupportedDType` for a dtype that is not F32, F16, BF16 or F64.
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
