/// A tensor to be written: its name, dtype, shape, and where its bytes come from.
public struct OutputTensor: Sendable {
  public enum Source: Sendable {
    /// The bytes of an input tensor, copied unchanged (same dtype and size).
    case copy(Tensor)
    /// A function that fills the output bytes (exactly `byteCount` of them). For small tensors.
    case compute(@Sendable (UnsafeMutableRawBufferPointer) throws -> Void)
    /// Rows (of the leading dimension) computed a range at a time: the writer prepares once,
    /// then asks for slices of a few MB, so memory does not grow with the tensor.
    case rows(@Sendable () throws -> RowFill)
    /// Part `index` of what one `JointFill` computes for several tensors (a solved layer's two
    /// factors): computed once, when the writer comes to the first of them, and written whole.
    case part(JointFill, Int)
  }

  /// Fills the bytes of rows `range` (row `range.lowerBound` at the start of the buffer).
  public typealias RowFill = (Range<Int>, UnsafeMutableRawBufferPointer) throws -> Void

  public let name: String
  public let dtype: DType
  public let shape: [Int]
  public let source: Source

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

  public var byteCount: Int {
    guard let elements = elementCount(shape), let bytes = dtype.byteCount(elements: UInt64(elements)),
      bytes <= UInt64(Int.max)
    else { return 0 }
    return Int(bytes)
  }

  /// Rows of the leading dimension (1 for a scalar).
  public var rowCount: Int { shape.first ?? 1 }

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

/// The bytes of several output tensors computed together, in one call, on the thread that
/// writes them: a solved layer's factors, which come from one solve. Nothing is kept once
/// written.
public final class JointFill: Sendable {
  private let compute: @Sendable () throws -> [[UInt8]]

  /// `compute` returns each part's bytes, in part order.
  public init(_ compute: @escaping @Sendable () throws -> [[UInt8]]) { self.compute = compute }

  func parts() throws -> [[UInt8]] { try compute() }

  /// Part `index` alone (a reader that wants one tensor's rows).
  func part(_ index: Int, byteCount: Int) throws -> [UInt8] {
    let parts = try compute()
    precondition(
      parts[index].count == byteCount, "part \(index): \(parts[index].count) bytes computed, \(byteCount) laid out")
    return parts[index]
  }
}

/// Called with the number of bytes just written, from any thread.
public typealias ProgressHandler = @Sendable (Int) -> Void

enum TensorDataWriter {
  static let copySlice = 16 << 20

  /// Writes every tensor at its offset, several at a time: each tensor alone, or all the parts
  /// of one `JointFill` together, computed once (jobs in order of first appearance). Memory
  /// stays bounded by (threads x largest job); the file's bytes do not depend on the thread count.
  static func write(
    _ tensors: [OutputTensor], at offsets: [Int], to output: OutputFile, progress: ProgressHandler?
  ) throws {
    var jobs: [[Int]] = []
    var jobOfFill: [ObjectIdentifier: Int] = [:]
    for (index, tensor) in tensors.enumerated() {
      if case let .part(fill, _) = tensor.source {
        if let known = jobOfFill[ObjectIdentifier(fill)] {
          jobs[known].append(index)
          continue
        }
        jobOfFill[ObjectIdentifier(fill)] = jobs.count
      }
      jobs.append([index])
    }
    _ = try parallelMap(jobs) { job in
      guard case let .part(fill, _) = tensors[job[0]].source else {
        try writeOne(tensors[job[0]], at: offsets[job[0]], to: output)
        progress?(tensors[job[0]].byteCount)
        return
      }
      let parts = try fill.parts()
      for index in job {
        guard case let .part(_, part) = tensors[index].source else { continue }
        precondition(
          parts[part].count == tensors[index].byteCount,
          "\(tensors[index].name): \(parts[part].count) bytes computed, \(tensors[index].byteCount) laid out")
        try output.write(parts[part], at: offsets[index])
        progress?(tensors[index].byteCount)
      }
    }
  }

  private static func writeOne(_ tensor: OutputTensor, at offset: Int, to output: OutputFile) throws {
    // A tensor of no bytes (a zero dimension) has nothing to write: never iterate its rows.
    guard tensor.byteCount > 0 else { return }
    switch tensor.source {
    case let .copy(input):
      // In slices, dropping each slice's pages once written: resident memory stays small
      // however large the tensor (an embedding matrix is hundreds of MB).
      var start = 0
      while start < input.byteCount {
        let end = min(input.byteCount, start + copySlice)
        try input.withBytes(start..<end) { bytes throws(CheckpointError) in try output.write(bytes, at: offset + start)
        }
        input.file.done(with: (input.offset + start)..<(input.offset + end))
        start = end
      }
    case let .compute(fill):
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(tensor.byteCount, 1), alignment: 64)
      defer { buffer.deallocate() }
      let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<tensor.byteCount])
      try fill(bytes)
      try output.write(UnsafeRawBufferPointer(bytes), at: offset)
    case let .part(fill, index):
      try output.write(try fill.part(index, byteCount: tensor.byteCount), at: offset)
    case let .rows(prepare):
      let fillRows = try prepare()
      let (rows, rowBytes) = (tensor.rowCount, tensor.rowBytes)
      let sliceRows = max(1, copySlice / max(rowBytes, 1))
      let buffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: max(min(rows, sliceRows) * rowBytes, 1), alignment: 64)
      defer { buffer.deallocate() }
      var start = 0
      while start < rows {
        let end = min(rows, start + sliceRows)
        let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<((end - start) * rowBytes)])
        try fillRows(start..<end, bytes)
        try output.write(UnsafeRawBufferPointer(bytes), at: offset + start * rowBytes)
        start = end
      }
    }
  }
}
