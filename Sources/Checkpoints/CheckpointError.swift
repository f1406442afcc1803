/// Every way reading or writing a checkpoint can fail, each with the context a user needs.
///
/// `code` is a stable, machine-readable name for the case (used in `--json` output and tests);
/// `description` is the sentence shown to people: file, tensor or key, byte offset, expected, found.
public enum CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
  // Files
  /// `io`: a file that cannot be opened, mapped or read, or that changed while it was read.
  case io(path: String, message: String)
  /// `unrecognized-format`: no layout fedlora reads (or a folder without one checkpoint file).
  case unrecognizedFormat(path: String, reason: String)
  /// A Hugging Face id (`owner/name[@revision]`) that is neither a path nor in the local cache.
  case notCached(id: String, looked: [String])
  /// A local path with nothing there (`existing`: the deepest part of it that does exist).
  case notFound(path: String, existing: String?)
  /// `tensor-not-found`: no tensor of that name.
  case tensorNotFound(path: String, tensor: String)
  /// `unsupported-dtype`: a dtype the operation cannot handle (converting quantised blocks to numbers, writing a ggml type to safetensors...).
  case unsupportedDType(path: String, tensor: String, dtype: String, operation: String)
  /// A tensor whose dtype the output format cannot hold (`convertible`: a float that another
  /// dtype could carry).
  case formatCannotHold(path: String, tensor: String, dtype: String, format: String, convertible: Bool)
  /// `write-failed`: an output that cannot be created, written, synced or renamed into place.
  case writeFailed(path: String, message: String)
  /// `output-is-input`: an output that would overwrite or lie inside an input.
  case outputIsInput(output: String, input: String, relation: String)
  /// `duplicate-input`: one input given twice under two spellings.
  case duplicateInput(first: String, second: String)
  // safetensors
  /// safetensors `file-too-small`: fewer than the 8 bytes of the header length.
  case fileTooSmall(path: String, size: Int, needed: Int)
  /// safetensors `header-too-large`: a header length over the reader's limit.
  case headerTooLarge(path: String, claimed: UInt64, limit: UInt64)
  /// safetensors `header-beyond-file`: a header length past the end of the file.
  case headerBeyondFile(path: String, claimed: UInt64, fileSize: Int)
  /// `invalid-utf8`: text (a header, a key, a name) that is not UTF-8.
  case invalidUTF8(path: String, offset: Int)
  /// `invalid-json`: JSON that does not parse, at a byte offset.
  case invalidJSON(path: String, offset: Int, message: String)
  /// `duplicate-key`: a JSON object or GGUF metadata key given twice.
  case duplicateKey(path: String, key: String, offset: Int)
  /// `bad-entry`: a tensor entry that is malformed (its dtype, shape or offsets of the wrong type).
  case badEntry(path: String, tensor: String, message: String)
  /// `bad-metadata`: a safetensors `__metadata__` that is not an object of strings.
  case badMetadata(path: String, message: String)
  /// A model's `config.json` (or a GGUF's llama.cpp keys) that does not say what it must.
  case badModelConfig(path: String, message: String)
  /// `unknown-dtype`: a dtype name the format does not define.
  case unknownDType(path: String, tensor: String, name: String)
  /// `offset-gap`: tensor data that leaves bytes unused before it.
  case offsetGap(path: String, tensor: String, expectedBegin: UInt64, found: UInt64)
  /// `offset-overlap`: tensor data that overlaps the previous tensor's.
  case offsetOverlap(path: String, tensor: String, expectedBegin: UInt64, found: UInt64)
  /// `bad-offsets`: `data_offsets` whose end is before their begin.
  case badOffsets(path: String, tensor: String, begin: UInt64, end: UInt64)
  /// `size-mismatch`: `data_offsets` that span another size than the shape and dtype need.
  case sizeMismatch(path: String, tensor: String, expectedBytes: UInt64, foundBytes: UInt64)
  /// `size-overflow`: a shape whose size overflows 64 bits.
  case sizeOverflow(path: String, tensor: String, shape: [UInt64])
  /// `trailing-bytes`: data after the last tensor.
  case trailingBytes(path: String, dataEnd: UInt64, bufferLength: UInt64)
  /// `data-truncated`: a tensor that ends past the data.
  case dataTruncated(path: String, tensor: String, dataEnd: UInt64, bufferLength: UInt64)
  // GGUF
  /// GGUF `bad-magic`: a file that does not start with `GGUF`.
  case badMagic(path: String, found: String)
  /// GGUF `unsupported-version`: a version other than 2 or 3.
  case unsupportedVersion(path: String, version: UInt32)
  /// GGUF `wrong-byte-order`: a big-endian file.
  case wrongByteOrder(path: String, version: UInt32)
  /// `truncated`: a value that needs more bytes than remain.
  case truncated(path: String, offset: Int, needed: UInt64, available: Int, what: String)
  /// `count-too-large`: a count the rest of the file cannot hold.
  case countTooLarge(path: String, what: String, count: UInt64, offset: Int)
  /// GGUF `empty-key`: an empty metadata key.
  case emptyKey(path: String, offset: Int)
  /// GGUF `bad-value-type`: an unknown metadata value type.
  case badValueType(path: String, key: String, type: UInt32, offset: Int)
  /// GGUF `nested-array`: an array of arrays.
  case nestedArray(path: String, key: String, offset: Int)
  /// GGUF `bad-alignment`: a `general.alignment` that is not a non-zero power of two (u32).
  case badAlignment(path: String, message: String)
  /// `duplicate-tensor`: a tensor name given twice.
  case duplicateTensor(path: String, tensor: String)
  /// GGUF `tensor-name-too-long`: a name over 63 bytes.
  case tensorNameTooLong(path: String, tensor: String, length: Int)
  /// GGUF `too-many-dims`: more than 4.
  case tooManyDimensions(path: String, tensor: String, dimensions: UInt32)
  /// GGUF `unknown-ggml-type`: an unknown or retired tensor type.
  case unknownGGMLType(path: String, tensor: String, type: UInt32)
  /// GGUF `bad-block-multiple`: rows that are not whole quantisation blocks.
  case badBlockMultiple(path: String, tensor: String, ne0: UInt64, blockSize: Int)
  /// GGUF `misaligned-offset`: a data offset off the alignment.
  case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
  /// GGUF `tensor-beyond-file`: a tensor that ends past the end of the file.
  case tensorBeyondFile(path: String, tensor: String, end: UInt64, fileSize: Int)
  // Sharded checkpoints
  /// `bad-index`: a sharded index whose weight map is missing or malformed.
  case badIndex(path: String, message: String)
  /// `bad-shard-name`: a shard name with a path in it.
  case badShardName(path: String, shard: String)
  /// `missing-shard`: a shard the index names that does not exist.
  case missingShard(path: String, shard: String)
  /// `tensor-not-in-shard`: a tensor the index places in a shard that does not hold it.
  case tensorNotInShard(path: String, tensor: String, shard: String)
  // Tokenizer files (tokenizer.model, tokenizer.json, tokenizer_config.json)
  /// `bad-tokenizer`: tokenizer files that are malformed or say what cannot be.
  case badTokenizer(path: String, message: String)
  // PyTorch checkpoints (a zip of a pickle and its storages)
  /// PyTorch `bad-archive`: a zip that cannot be read, or without one `data.pkl`.
  case badArchive(path: String, message: String)
  /// PyTorch `bad-pickle`: a pickle that is malformed or uses opcodes `torch.save` does not write.
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
