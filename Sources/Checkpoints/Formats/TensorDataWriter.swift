enum TensorDataWriter {
  static let copySlice = 16 << 20

  /// Writes every tensor the writer computes itself (all but the supplied ones) at its offset,
  /// several at a time. Memory stays bounded by (threads x the largest slice or `.compute`
  /// tensor); the file's bytes do not depend on the thread count.
  static func write(
    _ tensors: [OutputTensor], at offsets: [Int], to output: OutputFile, progress: ProgressHandler?
  ) throws {
    let jobs = tensors.indices.filter { !tensors[$0].isSupplied }
    _ = try parallelMap(jobs) { index in
      try writeOne(tensors[index], at: offsets[index], to: output)
      progress?(tensors[index].byteCount)
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
    case let .rows(prepare):
      let fillRows = try prepare()
      for slice in rowSlices(tensor) { try writeRows(slice, of: tensor, fill: fillRows, at: offset, to: output) }
    case .supplied:
      preconditionFailure("\(tensor.name): supplied through its TensorSink, not written by the writer")
    }
  }

  /// The ranges of rows a row-computed tensor is written in: slices of about `copySlice` bytes.
  static func rowSlices(_ tensor: OutputTensor) -> [Range<Int>] {
    let (rows, rowBytes) = (tensor.rowCount, tensor.rowBytes)
    guard tensor.byteCount > 0 else { return [] }
    let sliceRows = max(1, copySlice / max(rowBytes, 1))
    return stride(from: 0, to: rows, by: sliceRows).map { $0..<min(rows, $0 + sliceRows) }
  }

  /// Fills rows `rows` of `tensor` into a buffer of their own and writes them at their place.
  static func writeRows(
    _ rows: Range<Int>, of tensor: OutputTensor, fill: OutputTensor.RowFill, at offset: Int, to output: OutputFile
  ) throws {
    let rowBytes = tensor.rowBytes
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(rows.count * rowBytes, 1), alignment: 64)
    defer { buffer.deallocate() }
    let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<(rows.count * rowBytes)])
    try fill(rows, bytes)
    try output.write(UnsafeRawBufferPointer(bytes), at: offset + rows.lowerBound * rowBytes)
  }
}
