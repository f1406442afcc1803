import Dispatch

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
      values.withUnsafeBufferPointer { FloatConversion.narrow($0.baseAddress!, count: values.count, to: dtype, into: buffer.baseAddress!) }
    })
  }

  public var byteCount: Int { Int(dtype.byteCount(elements: UInt64(shape.reduce(1, *))) ?? 0) }
}

/// Called with the number of bytes just written, from any thread.
public typealias ProgressHandler = @Sendable (Int) -> Void

enum TensorDataWriter {
  /// Writes every tensor at its offset, several groups at a time. Memory stays bounded by
  /// (threads x largest computed group); the file's bytes do not depend on the thread count.
  static func write(
    _ tensors: [OutputTensor], at offsets: [Int], to output: OutputFile, progress: ProgressHandler?
  ) throws {
    let failures = FirstFailure()
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
    let schedule = groups
    DispatchQueue.concurrentPerform(iterations: schedule.count) { group in
      for index in schedule[group] {
        guard !failures.hasFailed else { return }
        do {
          try writeOne(tensors[index], at: offsets[index], to: output)
          progress?(tensors[index].byteCount)
        } catch {
          failures.record(error, at: index)
        }
      }
    }
    if let error = failures.error { throw error }
  }

  private static func writeOne(_ tensor: OutputTensor, at offset: Int, to output: OutputFile) throws {
    switch tensor.source {
    case let .copy(input):
      try output.write(input.bytes, at: offset)
      input.file.done(with: input.offset..<(input.offset + input.byteCount))
    case let .compute(fill):
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tensor.byteCount, 1), alignment: 64)
      defer { buffer.deallocate() }
      let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<tensor.byteCount])
      try fill(bytes)
      try output.write(UnsafeRawBufferPointer(bytes), at: offset)
    }
  }
}

/// Keeps the failure with the lowest index, so the reported error does not depend on timing.
final class FirstFailure: @unchecked Sendable {
  private let lock = DispatchQueue(label: "fedlora.first-failure")
  private var first: (index: Int, error: any Error)?

  var hasFailed: Bool { lock.sync { first != nil } }
  var error: (any Error)? { lock.sync { first?.error } }

  func record(_ error: any Error, at index: Int) {
    lock.sync {
      if let existing = first, existing.index <= index { return }
      first = (index, error)
    }
  }
}
