/// Every way reading or writing a checkpoint can fail, each with the context a user needs.
///
/// `code` is a stable, machine-readable name for the case (used in `--json` output and tests);
/// `description` is the sentence shown to people: file, tensor or key, byte offset, expected, found.
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
  // Files
  case io(path: String, message: String)
  case unrecognizedFormat(path: String, reason: String)
  /// A Hugging Face id (`owner/name[@revision]`) that is neither a path nor in the local cache.
  case notCached(id: String, looked: [String])
  /// A local path with nothing there (`existing`: the deepest part of it that does exist).
  case notFound(path: String, existing: String?)
  case tensorNotFound(path: String, tensor: String)
  case unsupportedDType(path: String, tensor: String, dtype: String, operation: String)
  /// A tensor whose dtype the output format cannot hold (`convertible`: a float that another
  /// dtype could carry).
  case formatCannotHold(path: String, tensor: String, dtype: String, format: String, convertible: Bool)
  case writeFailed(path: String, message: String)
  case outputIsInput(output: String, input: String, relation: String)
  case duplicateInput(first: String, second: String)
  // safetensors
  case fileTooSmall(path: String, size: Int, needed: Int)
  case headerTooLarge(path: String, claimed: UInt64, limit: UInt64)
  case headerBeyondFile(path: String, claimed: UInt64, fileSize: Int)
  case invalidUTF8(path: String, offset: Int)
  case invalidJSON(path: String, offset: Int, message: String)
  case duplicateKey(path: String, key: String, offset: Int)
  case badEntry(path: String, tensor: String, message: String)
  case badMetadata(path: String, message: String)
  /// A model's `config.json` (or a GGUF's llama.cpp keys) that does not say what it must.
  case badModelConfig(path: String, message: String)
  case unknownDType(path: String, tensor: String, name: String)
  case offsetGap(path: String, tensor: String, expectedBegin: UInt64, found: UInt64)
  case offsetOverlap(path: String, tensor: String, expectedBegin: UInt64, found: UInt64)
  case badOffsets(path: String, tensor: String, begin: UInt64, end: UInt64)
  case sizeMismatch(path: String, tensor: String, expectedBytes: UInt64, foundBytes: UInt64)
  case sizeOverflow(path: String, tensor: String, shape: [UInt64])
  case trailingBytes(path: String, dataEnd: UInt64, bufferLength: UInt64)
  case dataTruncated(path: String, tensor: String, dataEnd: UInt64, bufferLength: UInt64)
  // GGUF
  case badMagic(path: String, found: String)
  case unsupportedVersion(path: String, version: UInt32)
  case wrongByteOrder(path: String, version: UInt32)
  case truncated(path: String, offset: Int, needed: UInt64, available: Int, what: String)
  case countTooLarge(path: String, what: String, count: UInt64, offset: Int)
  case emptyKey(path: String, offset: Int)
  case badValueType(path: String, key: String, type: UInt32, offset: Int)
  case nestedArray(path: String, key: String, offset: Int)
  case badAlignment(path: String, message: String)
  case duplicateTensor(path: String, tensor: String)
  case tensorNameTooLong(path: String, tensor: String, length: Int)
  case tooManyDimensions(path: String, tensor: String, dimensions: UInt32)
  case unknownGGMLType(path: String, tensor: String, type: UInt32)
  case badBlockMultiple(path: String, tensor: String, ne0: UInt64, blockSize: Int)
  case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
  case tensorBeyondFile(path: String, tensor: String, end: UInt64, fileSize: Int)
  // Sharded checkpoints
  case badIndex(path: String, message: String)
  case badShardName(path: String, shard: String)
  case missingShard(path: String, shard: String)
  case tensorNotInShard(path: String, tensor: String, shard: String)
  // Tokenizer files (tokenizer.model, tokenizer.json, tokenizer_config.json)
  case badTokenizer(path: String, message: String)
  // PyTorch checkpoints (a zip of a pickle and its storages)
  case badArchive(path: String, message: String)
  case badPickle(path: String, offset: Int, message: String)
  /// Globals a pickle would import and call that are not in fedlora's allowlist, with their
  /// byte offsets in `data.pkl`: nothing is ever imported or run, the file is refused.
  case unsafePickle(path: String, globals: [PickleGlobal])

  /// A stable kebab-case name for the case, for pipelines and tests.
  public var code: String {
    switch self {
    case .io: "io"
    case .badArchive: "bad-archive"
    case .badPickle: "bad-pickle"
    case .unsafePickle: "unsafe-pickle"
    case .unrecognizedFormat: "unrecognized-format"
    case .notCached: "not-cached"
    case .notFound: "not-found"
    case .tensorNotFound: "tensor-not-found"
    case .unsupportedDType: "unsupported-dtype"
    case let .formatCannotHold(_, _, _, _, convertible): convertible ? "format-cannot-hold" : "format-cannot-hold-any"
    case .writeFailed: "write-failed"
    case .outputIsInput: "output-is-input"
    case .duplicateInput: "duplicate-input"
    case .fileTooSmall: "file-too-small"
    case .headerTooLarge: "header-too-large"
    case .headerBeyondFile: "header-beyond-file"
    case .invalidUTF8: "invalid-utf8"
    case .invalidJSON: "invalid-json"
    case .duplicateKey: "duplicate-key"
    case .badEntry: "bad-entry"
    case .badMetadata: "bad-metadata"
    case .badModelConfig: "bad-config"
    case .unknownDType: "unknown-dtype"
    case .offsetGap: "offset-gap"
    case .offsetOverlap: "offset-overlap"
    case .badOffsets: "bad-offsets"
    case .sizeMismatch: "size-mismatch"
    case .sizeOverflow: "size-overflow"
    case .trailingBytes: "trailing-bytes"
    case .dataTruncated: "data-truncated"
    case .badMagic: "bad-magic"
    case .unsupportedVersion: "unsupported-version"
    case .wrongByteOrder: "wrong-byte-order"
    case .truncated: "truncated"
    case .countTooLarge: "count-too-large"
    case .emptyKey: "empty-key"
    case .badValueType: "bad-value-type"
    case .nestedArray: "nested-array"
    case .badAlignment: "bad-alignment"
    case .duplicateTensor: "duplicate-tensor"
    case .tensorNameTooLong: "tensor-name-too-long"
    case .tooManyDimensions: "too-many-dims"
    case .unknownGGMLType: "unknown-ggml-type"
    case .badBlockMultiple: "bad-block-multiple"
    case .misalignedOffset: "misaligned-offset"
    case .tensorBeyondFile: "tensor-beyond-file"
    case .badIndex: "bad-index"
    case .badShardName: "bad-shard-name"
    case .missingShard: "missing-shard"
    case .tensorNotInShard: "tensor-not-in-shard"
    case .badTokenizer: "bad-tokenizer"
    }
  }

  /// The one-line message shown to people, naming the file (or id) and what was expected and found.
  public var description: String {
    switch self {
    case let .io(path, message): "\(path): \(message)"
    case let .badArchive(path, message): "\(path): not a readable PyTorch archive: \(message)"
    case let .badPickle(path, offset, message): "\(path): data.pkl at byte \(offset): \(message)"
    case let .unsafePickle(path, globals):
      "\(path): the pickle would import and run code fedlora does not allow: "
        + globals.map { "\($0.module).\($0.name) (data.pkl byte \($0.offset))" }.joined(separator: ", ")
        + "; refused unopened (load it only if you trust it, and save it with safe_serialization=True)"
    case let .unrecognizedFormat(path, reason): "\(path): not a checkpoint fedlora can read (\(reason))"
    case let .notCached(id, looked):
      "\(id): no such file or folder here, and not in the Hugging Face cache (looked for \(looked.joined(separator: " and "))); fedlora never downloads: fetch it first (huggingface-cli download \(id.split(separator: "@").first ?? "")), or give the path of a local copy"
    case let .notFound(path, existing):
      "\(path): no such file or folder" + (existing.map { " (\($0) exists, but nothing below it by that name)" } ?? "")
    case let .tensorNotFound(path, tensor): "\(path): no tensor named '\(tensor)'"
    case let .formatCannotHold(path, tensor, dtype, format, _):
      "\(path): tensor '\(tensor)' is \(dtype), which \(format) cannot hold"
    case let .unsupportedDType(path, tensor, dtype, operation):
      "\(path): tensor '\(tensor)' has dtype \(dtype), which fedlora cannot \(operation)"
    case let .writeFailed(path, message): "\(path): cannot write: \(message)"
    case let .outputIsInput(output, input, relation):
      "output \(output) \(relation) \(input): refusing to write over what is being read; choose another output"
    case let .duplicateInput(first, second): "\(second) is the same input as \(first): give each client once"
    case let .fileTooSmall(path, size, needed):
      "\(path): file is \(size) bytes, a safetensors file needs at least \(needed)"
    case let .headerTooLarge(path, claimed, limit):
      // A length beyond 2^40 is some other file's first 8 bytes: they are not shown.
      claimed < 1 << 40
        ? "\(path): header length at offset 0 is \(claimed) bytes, more than the limit of \(limit)"
        : "\(path): the first 8 bytes are no safetensors header length (more than the limit of \(limit)): not a safetensors file?"
    case let .headerBeyondFile(path, claimed, fileSize):
      claimed < 1 << 40
        ? "\(path): header length at offset 0 is \(claimed) bytes, but the file has only \(fileSize) bytes"
        : "\(path): the first 8 bytes are no safetensors header length (the file has \(fileSize) bytes): not a safetensors file?"
    case let .invalidUTF8(path, offset): "\(path): invalid UTF-8 at byte offset \(offset)"
    case let .invalidJSON(path, offset, message): "\(path): invalid JSON at byte offset \(offset): \(message)"
    case let .duplicateKey(path, key, offset): "\(path): duplicate key '\(key)' at byte offset \(offset)"
    case let .badEntry(path, tensor, message): "\(path): tensor '\(tensor)': \(message)"
    case let .badMetadata(path, message): "\(path): __metadata__: \(message)"
    case let .badModelConfig(path, message): "\(path): \(message)"
    case let .unknownDType(path, tensor, name): "\(path): tensor '\(tensor)': unknown dtype '\(name)'"
    case let .offsetGap(path, tensor, expected, found):
      "\(path): tensor '\(tensor)' begins at data offset \(found), expected \(expected): gap in the data buffer"
    case let .offsetOverlap(path, tensor, expected, found):
      "\(path): tensor '\(tensor)' begins at data offset \(found), expected \(expected): overlaps the previous tensor"
    case let .badOffsets(path, tensor, begin, end):
      "\(path): tensor '\(tensor)': data_offsets end \(end) is before begin \(begin)"
    case let .sizeMismatch(path, tensor, expected, found):
      "\(path): tensor '\(tensor)': shape and dtype need \(expected) bytes, data_offsets span \(found)"
    case let .sizeOverflow(path, tensor, shape):
      "\(path): tensor '\(tensor)': size of shape \(shape) overflows 64 bits"
    case let .trailingBytes(path, dataEnd, bufferLength):
      "\(path): tensors end at data offset \(dataEnd), but the data buffer has \(bufferLength) bytes (trailing bytes)"
    case let .dataTruncated(path, tensor, dataEnd, bufferLength):
      "\(path): tensor '\(tensor)' ends at data offset \(dataEnd), but the data buffer has only \(bufferLength) bytes (truncated)"
    case let .badMagic(path, found): "\(path): bad magic at offset 0: expected 'GGUF', found \(found)"
    case let .unsupportedVersion(path, version):
      "\(path): GGUF version \(version) at offset 4 is not supported (expected 2 or 3)"
    case let .wrongByteOrder(path, version):
      "\(path): GGUF version field at offset 4 reads \(version): the file is in the other byte order (big-endian), which fedlora does not read"
    case let .truncated(path, offset, needed, available, what):
      "\(path): \(what) at byte offset \(offset) needs \(needed) bytes, only \(available) remain"
    case let .countTooLarge(path, what, count, offset):
      "\(path): \(what) \(count) at byte offset \(offset) cannot fit in the file"
    case let .emptyKey(path, offset): "\(path): empty metadata key at byte offset \(offset)"
    case let .badValueType(path, key, type, offset):
      "\(path): key '\(key)': unknown value type \(type) at byte offset \(offset)"
    case let .nestedArray(path, key, offset):
      "\(path): key '\(key)': nested arrays are not allowed (byte offset \(offset))"
    case let .badAlignment(path, message): "\(path): general.alignment: \(message)"
    case let .duplicateTensor(path, tensor): "\(path): duplicate tensor name '\(tensor)'"
    case let .tensorNameTooLong(path, tensor, length):
      "\(path): tensor name '\(tensor)' is \(length) bytes, at most 63 allowed"
    case let .tooManyDimensions(path, tensor, dimensions):
      "\(path): tensor '\(tensor)' has \(dimensions) dimensions, at most 4 allowed"
    case let .unknownGGMLType(path, tensor, type): "\(path): tensor '\(tensor)': unknown or retired ggml type \(type)"
    case let .badBlockMultiple(path, tensor, ne0, blockSize):
      "\(path): tensor '\(tensor)': ne[0] = \(ne0) is not a multiple of the block size \(blockSize)"
    case let .misalignedOffset(path, tensor, offset, alignment):
      "\(path): tensor '\(tensor)': data offset \(offset) is not a multiple of the alignment \(alignment)"
    case let .tensorBeyondFile(path, tensor, end, fileSize):
      "\(path): tensor '\(tensor)' ends at byte \(end), past the end of the file (\(fileSize) bytes)"
    case let .badIndex(path, message): "\(path): \(message)"
    case let .badTokenizer(path, message): "\(path): \(message)"
    case let .badShardName(path, shard): "\(path): shard name '\(shard)' must be a bare file name"
    case let .missingShard(path, shard): "\(path): shard '\(shard)' does not exist"
    case let .tensorNotInShard(path, tensor, shard):
      "\(path): tensor '\(tensor)' is not in shard '\(shard)' as the index says"
    }
  }
}
