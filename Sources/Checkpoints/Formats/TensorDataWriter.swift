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
