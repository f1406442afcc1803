/// Writes GGUF version 3 files that gguf-py and llama.cpp read: tensors packed in header order,
/// each padded with zeros to the alignment.
public enum GGUFWriter {
  /// Writes `tensors` and `metadata` as a GGUF file at `path`, in `transaction` or in one of its own
  /// that it commits.
  ///
  /// Shapes are given in PyTorch order and stored as `ne` reversed; `general.alignment` is written only
  /// when `alignment` is not 32. No tensor may be supplied (see
  /// ``open(_:metadata:alignment:to:progress:in:)``).
  ///
  /// - Parameters:
  ///   - tensors: the tensors, in the order stored.
  ///   - metadata: the key/values, in order.
  ///   - alignment: the data alignment in bytes (a power of two).
  ///   - path: the destination file.
  ///   - progress: called with each tensor's byte count once it is written.
  ///   - transaction: the run's outputs, or nil for one of its own, committed on success.
  /// - Throws: as ``open(_:metadata:alignment:to:progress:in:)``, or what a tensor's source throws.
  /// - Complexity: O(total bytes), tensors written in parallel with bounded memory (as
  ///   ``SafeTensorsWriter``).
  public static func write(
    _ tensors: [OutputTensor], metadata: [(key: String, value: GGUFValue)], alignment: Int = GGUFFile.defaultAlignment,
    to path: String, progress: ProgressHandler? = nil, in transaction: OutputTransaction? = nil
  ) throws {
    try OutputTransaction.run(in: transaction) {
      try open(tensors, metadata: metadata, alignment: alignment, to: path, progress: progress, in: $0).finish()
    }
  }

  /// Stages the GGUF file `write` writes in `transaction`, every tensor but the supplied ones
  /// written, and returns the sink that takes those (``TensorSink/finish()`` once they are).
  /// - Parameters:
  ///   - tensors: the tensors, in the order stored.
  ///   - metadata: the key/values, in order.
  ///   - alignment: the data alignment in bytes (a power of two).
  ///   - path: the destination, renamed into place when `transaction` commits.
  ///   - progress: called with each tensor's byte count once it is written.
  ///   - transaction: the run's outputs; a dry run's records the file and writes nothing.
  /// - Returns: the sink of the supplied tensors.
  /// - Throws: `CheckpointError` for a dtype GGUF cannot hold, a name too long or given twice,
  ///   more than 4 dimensions, a row that is not whole blocks, or a failed write.
  /// - Complexity: O(bytes of the tensors it computes itself), written before it returns.
  public static func open(
    _ tensors: [OutputTensor], metadata: [(key: String, value: GGUFValue)], alignment: Int = GGUFFile.defaultAlignment,
    to path: String, progress: ProgressHandler? = nil, in transaction: OutputTransaction
  ) throws -> TensorSink {
    var header = ByteBuffer()
    header.append(GGUFFile.magic)
    header.append(UInt32(3))
    header.append(UInt64(tensors.count))
    var metadata = metadata.filter { $0.key != "general.alignment" }
    if alignment != GGUFFile.defaultAlignment { metadata.append(("general.alignment", .u32(UInt32(alignment)))) }
    header.append(UInt64(metadata.count))
    for (key, value) in metadata {
      header.append(key)
      header.append(value.type.rawValue)
      header.append(value)
    }
    var names = Set<String>()
    var offsets: [Int] = []
    var position = 0
    for tensor in tensors {
      guard let type = tensor.dtype.ggmlType else {
        throw CheckpointError.unsupportedDType(
          path: path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "write to GGUF")
      }
      guard tensor.name.utf8.count <= GGUFFile.maxNameLength else {
        throw CheckpointError.tensorNameTooLong(path: path, tensor: tensor.name, length: tensor.name.utf8.count)
      }
      guard names.insert(tensor.name).inserted else {
        throw CheckpointError.duplicateTensor(path: path, tensor: tensor.name)
      }
      guard tensor.shape.count <= 4 else {
        throw CheckpointError.tooManyDimensions(path: path, tensor: tensor.name, dimensions: UInt32(tensor.shape.count))
      }
      if let ne0 = tensor.shape.last, ne0 % tensor.dtype.block.elements != 0 {
        throw CheckpointError.badBlockMultiple(
          path: path, tensor: tensor.name, ne0: UInt64(ne0), blockSize: tensor.dtype.block.elements)
      }
      header.append(tensor.name)
      header.append(UInt32(tensor.shape.count))
      for dimension in tensor.shape.reversed() { header.append(UInt64(dimension)) }
      header.append(type)
      header.append(UInt64(position))
      offsets.append(position)
      position = (position + tensor.byteCount + alignment - 1) / alignment * alignment
    }
    let dataStart = (header.bytes.count + alignment - 1) / alignment * alignment
    guard let output = try transaction.open(path, tensors: tensors) else { return .dryRun }
    try output.write(header.bytes, at: 0)
    try output.setLength(dataStart + position)  // zero padding comes from the sparse extension
    let absolute = offsets.map { $0 + dataStart }
    try TensorDataWriter.write(tensors, at: absolute, to: output, progress: progress)
    return TensorSink(tensors, offsets: absolute, file: output, progress: progress)
  }
}
