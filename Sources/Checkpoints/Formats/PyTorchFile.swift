/// A PyTorch checkpoint in the zip format of `torch.save` (PyTorch >= 1.6): `ARCHIVE/data.pkl`
/// (a pickle of the state dict, interpreted by `PickleReader`, never run) and `ARCHIVE/data/KEY`
/// (the storages, mapped in place when stored, as torch.save writes them; inflated into memory
/// when deflated). Tensors are views of their storages: several may share one, at any storage
/// offset; a strided view (a transpose, a slice) is copied out contiguous, as `.contiguous()`
/// would.
public struct PyTorchFile: Sendable {
  /// The mapped archive (deflated storages and strided tensors are read from in-memory copies instead).
  public let file: MappedFile
  /// Tensors in state-dict order.
  public let tensors: [Tensor]

  /// Every global the pickle names, and those of them that are not allowed, for `verify`; nothing is
  /// imported or run.
  /// - Parameter file: a `torch.save` archive, mapped.
  /// - Returns: all globals in order of appearance, and the unsafe ones among them.
  /// - Throws: ``CheckpointError``: `unrecognized-format` (not a zip, or a pre-1.6 bare pickle),
  ///   `bad-archive`, `bad-pickle`.
  /// - Complexity: O(archive directory + pickle bytes).
  public static func globals(of file: MappedFile) throws(CheckpointError) -> (
    all: [PickleGlobal], unsafe: [PickleGlobal]
  ) {
    let (reader, _, _) = try read(file)
    return (reader.seen, reader.unsafe)
  }

  /// The stored entries whose bytes do not match their CRC-32, read a slice at a time with the pages
  /// released (what `verify --data` reports; opening maps the storages unread, and deflated ones are
  /// checked as they are inflated).
  /// - Parameter file: a `torch.save` archive, mapped.
  /// - Returns: the names of the failing entries, in archive order.
  /// - Throws: ``CheckpointError``: `bad-archive` for an unreadable zip directory, `io` when the file
  ///   cannot be mapped again.
  /// - Complexity: O(bytes of the stored entries), read once; memory O(16 MB slice).
  public static func entriesFailingCRC(in file: MappedFile) throws(CheckpointError) -> [String] {
    let zip = try ZipArchive(file: file)
    var failing: [String] = []
    for entry in zip.entries where entry.method == 0 {
      var crc: UInt32 = 0
      var start = entry.dataOffset
      let end = entry.dataOffset + entry.size
      while start < end {
        let stop = min(end, start + (16 << 20))
        crc = try file.withBytes(start..<stop) { crc32($0, continuing: crc) }
        file.done(with: start..<stop)
        start = stop
      }
      if crc != entry.crc { failing.append(entry.name) }
    }
    return failing
  }

  /// Reads `data.pkl` without running it and makes each tensor a view of its storage; a pickle naming a
  /// global fedlora does not allow is refused (`unsafePickle`) before any tensor is made.
  ///
  /// - Parameter file: a `torch.save` archive (PyTorch 1.6 or later), mapped.
  /// - Throws: ``CheckpointError``: `unsafe-pickle` naming each global outside the allowlist,
  ///   `unrecognized-format` (not a zip, a pre-1.6 pickle, no state dict of tensors), `bad-archive`,
  ///   `bad-pickle`, `duplicate-tensor`, `bad-entry`, `size-overflow`, `data-truncated`.
  /// - Complexity: O(pickle bytes) to interpret; stored storages are mapped in place, deflated ones
  ///   inflated into memory (O(their size)), strided views copied out contiguous.
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
    var inflated: [String: MappedFile] = [:]
    for (key, value) in stateDict.items {
      guard case let .string(name) = key else {
        throw .unrecognizedFormat(path: path, reason: "a state dict key that is not a string")
      }
      guard names.insert(name).inserted else { throw .duplicateTensor(path: path, tensor: name) }
      guard case let .tensor(dtype, storage, start, shape, strides) = value else {
        throw .unrecognizedFormat(
          path: path,
          reason: "'\(name)' holds something other than a tensor (a training checkpoint? save the model's state_dict())"
        )
      }
      guard let entry = archive.zip.entry("\(prefix)data/\(storage)") else {
        throw .badArchive(path: path, message: "tensor '\(name)': its storage data/\(storage) is not in the archive")
      }
      let bytes = try Self.storageBytes(entry, storage: storage, of: file, in: archive.zip, inflated: &inflated)
      let view = View(name: name, dtype: dtype, start: start, shape: shape, strides: strides)
      tensors.append(try view.tensor(over: bytes, storageSize: entry.size, path: path))
    }
    self.tensors = tensors
  }

  /// Where storage `storage`'s bytes are: in the archive when stored, else in a copy inflated
  /// once (kept in `inflated` for the other tensors viewing it).
  private static func storageBytes(
    _ entry: ZipArchive.Entry, storage: String, of file: MappedFile, in zip: ZipArchive,
    inflated: inout [String: MappedFile]
  ) throws(CheckpointError) -> (file: MappedFile, offset: Int) {
    if entry.method == 0 { return (file, entry.dataOffset) }
    if let known = inflated[storage] { return (known, 0) }
    try zip.checkClaimedSize(entry)
    let memory = try MappedFile(anonymousFor: "\(file.path) (data/\(storage), inflated)", count: entry.size) {
      buffer throws(CheckpointError) in
      try zip.read(entry, into: buffer)
    }
    inflated[storage] = memory
    return (memory, 0)
  }

  /// A tensor of the state dict: a view of a storage (`_rebuild_tensor_v2`'s arguments).
  private struct View {
    let name: String
    let dtype: DType
    let start: Int
    let shape: [Int]
    let strides: [Int]

    /// The view as a tensor over `bytes` (a storage of `storageSize` bytes), checked to lie in
    /// it: in place when contiguous, else copied out contiguous (a broadcast may not blow up memory).
    func tensor(over bytes: (file: MappedFile, offset: Int), storageSize: Int, path: String) throws(CheckpointError)
      -> Tensor
    {
      let width = (dtype.bitsPerElement ?? 8) / 8
      let storageElements = storageSize / width
      guard let elements = elementCount(shape) else {
        throw .sizeOverflow(path: path, tensor: name, shape: shape.map { UInt64($0) })
      }
      // The last element the view reaches must lie in the storage (no stride is negative in torch).
      var last = start
      for (size, stride) in zip(shape, strides) where size > 0 {
        guard stride >= 0 else { throw .badEntry(path: path, tensor: name, message: "a negative stride \(stride)") }
        let (reach, overflow) = (size - 1).multipliedReportingOverflow(by: stride)
        let (sum, sumOverflow) = last.addingReportingOverflow(reach)
        guard !overflow, !sumOverflow else {
          throw .sizeOverflow(path: path, tensor: name, shape: shape.map { UInt64($0) })
        }
        last = sum
      }
      guard elements == 0 || last < storageElements else {
        throw .dataTruncated(
          path: path, tensor: name, dataEnd: UInt64(clamping: last &+ 1) &* UInt64(width),
          bufferLength: UInt64(storageSize))
      }
      if PyTorchFile.isContiguous(shape: shape, strides: strides) {
        return Tensor(
          name: name, dtype: dtype, shape: shape, offset: bytes.offset + start * width, byteCount: elements * width,
          file: bytes.file)
      }
      // A strided view, copied out contiguous; a broadcast (stride 0) may not blow up memory.
      guard elements <= 4 * storageElements + 4096 else {
        throw .badEntry(
          path: path, tensor: name,
          message: "a view of \(elements) elements over a storage of \(storageElements): refused rather than expanded")
      }
      let copy = try MappedFile(anonymousFor: "\(path) (\(name), made contiguous)", count: elements * width) {
        target throws(CheckpointError) in
        try bytes.file.withBytes(bytes.offset..<(bytes.offset + storageSize)) { source in
          PyTorchFile.gather(source, into: target, start: start, shape: shape, strides: strides, width: width)
        }
      }
      return Tensor(name: name, dtype: dtype, shape: shape, offset: 0, byteCount: elements * width, file: copy)
    }
  }

  /// Row-major contiguous (dimensions of size 1 may carry any stride), as `.contiguous()` leaves it.
  static func isContiguous(shape: [Int], strides: [Int]) -> Bool {
    var expected = 1
    for (size, stride) in zip(shape, strides).reversed() {
      guard size == 1 || stride == expected else { return false }
      expected &*= size
    }
    return true
  }

  /// Copies the elements of a strided view in row-major order (an odometer over the indices).
  static func gather(
    _ source: UnsafeRawBufferPointer, into target: UnsafeMutableRawBufferPointer, start: Int, shape: [Int],
    strides: [Int], width: Int
  ) {
    let count = target.count / max(width, 1)
    guard count > 0 else { return }
    var index = [Int](repeating: 0, count: shape.count)
    var offset = start
    for element in 0..<count {
      (target.baseAddress! + element * width).copyMemory(from: source.baseAddress! + offset * width, byteCount: width)
      var axis = shape.count - 1
      while axis >= 0 {
        index[axis] += 1
        offset += strides[axis]
        if index[axis] < shape[axis] { break }
        offset -= strides[axis] * shape[axis]
        index[axis] = 0
        axis -= 1
      }
    }
  }

  /// The archive, its prefix, and the pickle read to its end.
  private static func read(_ file: MappedFile) throws(CheckpointError) -> (
    PickleReader, PickleValue, (zip: ZipArchive, prefix: String)
  ) {
    let path = file.path
    let magic = file.size >= 4 ? try file.load(UInt32.self, at: 0) : 0
    if magic & 0xFF == 0x80 {
      throw .unrecognizedFormat(
        path: path,
        reason:
          "a PyTorch file of the format before 1.6 (a bare pickle): re-save it with torch.save in PyTorch 1.6 or later")
    }
    guard magic == ZipArchive.localSignature else { throw .unrecognizedFormat(path: path, reason: "not a zip archive") }
    let zip = try ZipArchive(file: file)
    let pickles = zip.entries.filter { $0.name.hasSuffix("/data.pkl") || $0.name == "data.pkl" }
    guard pickles.count == 1, let pickle = pickles.first else {
      throw .badArchive(
        path: path, message: pickles.isEmpty ? "no data.pkl: not a torch.save archive" : "several data.pkl entries")
    }
    let prefix = String(pickle.name.dropLast("data.pkl".count))
    if let order = zip.entry(prefix + "byteorder") {
      let text = String(decoding: try zip.checkedBytes(order), as: UTF8.self)
      guard text == "little" else {
        throw .badArchive(
          path: path, message: "byteorder \(text.prefix(16).debugDescription): only little-endian storages are read")
      }
    }
    var reader = PickleReader(bytes: try zip.checkedBytes(pickle), path: path)
    let root = try reader.read()
    return (reader, root, (zip, prefix))
  }
}
