/// A PyTorch checkpoint in the zip format of `torch.save` (PyTorch >= 1.6): `ARCHIVE/data.pkl`
/// (a pickle of the state dict, interpreted by `PickleReader`, never run) and `ARCHIVE/data/KEY`
/// (the storages, mapped in place). Tensors are views of their storages: several may share
/// one, at any storage offset; they must be contiguous.
public struct PyTorchFile: Sendable {
  public let file: MappedFile
  /// Tensors in state-dict order.
  public let tensors: [Tensor]

  /// Every global the pickle names, allowed or not, for `verify`: nil when the file's pickle
  /// could not be read that far.
  public static func globals(of file: MappedFile) throws(CheckpointError) -> (all: [PickleGlobal], unsafe: [PickleGlobal]) {
    let (reader, _, _) = try read(file)
    return (reader.seen, reader.unsafe)
  }

  public init(file: MappedFile) throws(CheckpointError) {
    self.file = file
    let path = file.path
    let (reader, root, archive) = try Self.read(file)
    guard reader.unsafe.isEmpty else { throw .unsafePickle(path: path, globals: reader.unsafe) }
    let prefix = archive.prefix
    guard case let .dict(stateDict) = root else {
      throw .unrecognizedFormat(path: path, reason: "its pickle holds no state dict of tensors at the top")
    }
    var tensors: [Tensor] = []
    var names = Set<String>()
    for (key, value) in stateDict.items {
      guard case let .string(name) = key else { throw .unrecognizedFormat(path: path, reason: "a state dict key that is not a string") }
      guard names.insert(name).inserted else { throw .duplicateTensor(path: path, tensor: name) }
      guard case let .tensor(dtype, storage, start, shape, strides) = value else {
        throw .unrecognizedFormat(path: path, reason: "'\(name)' holds something other than a tensor (a training checkpoint? save the model's state_dict())")
      }
      guard let entry = archive.zip.entry("\(prefix)data/\(storage)") else {
        throw .badArchive(path: path, message: "tensor '\(name)': its storage data/\(storage) is not in the archive")
      }
      guard entry.method == 0 else {
        throw .badArchive(path: path, message: "tensor '\(name)': storage data/\(storage) is deflated; torch.save writes storages stored")
      }
      // Row-major contiguous (dimensions of size 1 may carry any stride), as `.contiguous()` leaves it.
      var expected = 1
      for (size, stride) in zip(shape, strides).reversed() {
        guard size == 1 || stride == expected else {
          throw .badEntry(path: path, tensor: name, message: "strides \(strides) of shape \(shape) are not contiguous; save tensor.contiguous()")
        }
        let (next, overflow) = expected.multipliedReportingOverflow(by: size)
        guard !overflow else { throw .sizeOverflow(path: path, tensor: name, shape: shape.map { UInt64($0) }) }
        expected = next
      }
      let width = (dtype.bitsPerElement ?? 8) / 8
      let elements = elementCount(shape) ?? 0
      let (begin, beginOverflow) = start.multipliedReportingOverflow(by: width)
      let (length, lengthOverflow) = elements.multipliedReportingOverflow(by: width)
      guard !beginOverflow, !lengthOverflow, begin <= entry.size, length <= entry.size - begin else {
        throw .dataTruncated(path: path, tensor: name, dataEnd: UInt64(clamping: begin) &+ UInt64(clamping: length), bufferLength: UInt64(entry.size))
      }
      tensors.append(Tensor(name: name, dtype: dtype, shape: shape, offset: entry.dataOffset + begin, byteCount: length, file: file))
    }
    self.tensors = tensors
  }

  /// The archive, its prefix, and the pickle read to its end.
  private static func read(_ file: MappedFile) throws(CheckpointError) -> (PickleReader, PickleValue, (zip: ZipArchive, prefix: String)) {
    let path = file.path
    let magic = file.size >= 4 ? try file.load(UInt32.self, at: 0) : 0
    if magic & 0xFF == 0x80 {
      throw .unrecognizedFormat(path: path, reason: "a PyTorch file of the format before 1.6 (a bare pickle): re-save it with torch.save in PyTorch 1.6 or later")
    }
    guard magic == ZipArchive.localSignature else { throw .unrecognizedFormat(path: path, reason: "not a zip archive") }
    let zip = try ZipArchive(file: file)
    let pickles = zip.entries.filter { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }
    guard pickles.count == 1, let pickle = pickles.first else {
      throw .badArchive(path: path, message: pickles.isEmpty ? "no data.pkl: not a torch.save archive" : "several data.pkl entries")
    }
    let prefix = String(pickle.name.dropLast("data.pkl".count))
    if let order = zip.entry(prefix + "byteorder") {
      let text = String(decoding: try zip.checkedBytes(order), as: UTF8.self)
      guard text == "little" else { throw .badArchive(path: path, message: "byteorder \(text.prefix(16).debugDescription): only little-endian storages are read") }
    }
    var reader = PickleReader(bytes: try zip.checkedBytes(pickle), path: path)
    let root = try reader.read()
    return (reader, root, (zip, prefix))
  }
}
