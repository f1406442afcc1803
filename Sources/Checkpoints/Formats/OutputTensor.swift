/// A tensor to be written: its name, dtype, shape, and where its bytes come from.
public struct OutputTensor: Sendable {
  public enum Source: Sendable {
    /// The bytes of an input tensor, copied unchanged (same dtype and size).
    case copy(Tensor)
    /// A function that fills the output bytes (exactly `byteCount` of them).
    case compute(@Sendable (UnsafeMutableRawBufferPointer) throws -> Void)
  }

  public let name: String
  public let dtype: DType
  public let shape: [Int]
  public let source: Source
  /// Tensors with the same group are computed one after the other on one thread (two factors
  /// of one solved layer); groups run in parallel, in order of first appearance.
  public let group: Int?

  public init(name: String, dtype: DType, shape: [Int], source: Source, group: Int? = nil) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.source = source
    self.group = group
  }

  /// An output holding `values` rounded once to `dtype`.
  public init(name: String, dtype: DType, shape: [Int], values: [Float]) {
    self.init(name: name, dtype: dtype, shape: shape, source: .compute { buffer in
      FloatConversion.narrow(values, to: dtype, into: buffer)
    })
  }

  public var byteCount: Int { Int(dtype.byteCount(elements: UInt64(shape.reduce(1, *))) ?? 0) }

  /// Fills `buffer` (`byteCount` bytes) with this tensor's bytes, whatever their source.
  public func fill(_ buffer: UnsafeMutableRawBufferPointer) throws {
    switch source {
    case let .copy(input): buffer.copyMemory(from: input.bytes)
    case let .compute(compute): try compute(buffer)
    }
  }
}

/// Called with the number of bytes just written, from any thread.
public typealias ProgressHandler = @Sendable (Int) -> Void

enum TensorDataWriter {
  static let copySlice = 16 << 20

  /// Writes every tensor at its offset, several groups at a time. Memory stays bounded by
  /// (threads x largest computed group); the file's bytes do not depend on the thread count.
  static func write(
    _ tensors: [OutputTensor], at offsets: [Int], to output: OutputFile, progress: ProgressHandler?
  ) throws {
    var groups: [[Int]] = []
    var groupOf: [Int: Int] = [:]
    for (index, tensor) in tensors.enumerated() {
      if let key = tensor.group, let known = groupOf[key] {
        groups[known].append(index)
      } else {
        if let key = tensor.group { groupOf[key] = groups.count }
        groups.append([index])
      }
    }
    _ = try parallelMap(groups) { group in
      for index in group {
        try writeOne(tensors[index], at: offsets[index], to: output)
        progress?(tensors[index].byteCount)
      }
    }
  }

  private static func writeOne(_ tensor: OutputTensor, at offset: Int, to output: OutputFile) throws {
    switch tensor.source {
    case let .copy(input):
      // In slices, dropping each slice's pages once written: resident memory stays small
      // however large the tensor (an embedding matrix is hundreds of MB).
      let bytes = input.bytes
      var start = 0
      while start < bytes.count {
        let end = min(bytes.count, start + copySlice)
        try output.write(UnsafeRawBufferPointer(rebasing: bytes[start..<end]), at: offset + start)
        input.file.done(with: (input.offset + start)..<(input.offset + end))
        start = end
      }
    case let .compute(fill):
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tensor.byteCount, 1), alignment: 64)
      defer { buffer.deallocate() }
      let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<tensor.byteCount])
      try fill(bytes)
      try output.write(UnsafeRawBufferPointer(bytes), at: offset)
    }
  }
}
