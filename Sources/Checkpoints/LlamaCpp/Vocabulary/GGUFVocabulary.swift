/// The vocabulary llama.cpp needs to run a model (`tokenizer.*` GGUF keys), built from a
/// Hugging Face model folder the way llama.cpp's `convert_hf_to_gguf.py` builds it for the
/// llama family: from `tokenizer.model` (SentencePiece, tokenizer model "llama") when present,
/// else from a byte-level BPE `tokenizer.json` (tokenizer model "gpt2", as Llama 3).
public struct GGUFVocabulary: Sendable {
  /// llama.cpp token types (`llama_token_type`).
  enum TokenType: Int32 {
    case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
  }

  /// The `tokenizer.ggml.*` key/values llama.cpp reads.
  public let metadata: [(key: String, value: GGUFValue)]
  /// Where the vocabulary came from and its size, for a log line.
  public let summary: String

  /// The largest vocabulary accepted (the largest real ones have about 260,000 tokens).
  static let maximumSize = 1 << 24

  /// What a folder yields: a vocabulary, or the reason there is none.
  public enum Outcome: Sendable {
    case vocabulary(GGUFVocabulary)
    case unavailable(reason: String)
  }

  /// Reads the folder's tokenizer files: `tokenizer.model` when present, else a byte-level BPE
  /// `tokenizer.json`, with `tokenizer_config.json`'s special tokens.
  /// - Parameters:
  ///   - folder: the model folder.
  ///   - vocabularySize: the model's `vocab_size`; the converter pads the token list to it with
  ///     `[PADi]` tokens.
  /// - Returns: the vocabulary, or why there is none (no tokenizer file, a tokenizer llama.cpp's
  ///   converter does not build).
  /// - Throws: ``CheckpointError/badTokenizer(path:message:)`` for a size outside 1...2^24 or tokenizer
  ///   files that are malformed; `io` when one cannot be read.
  /// - Complexity: O(tokenizer bytes + vocabulary size).
  public static func read(folder: String, vocabularySize: Int?) throws(CheckpointError) -> Outcome {
    // The token list is padded to the model's size: a claimed size is checked before anything is allocated.
    if let vocabularySize, !(1...maximumSize).contains(vocabularySize) {
      throw .badTokenizer(
        path: folder + "/config.json", message: "vocab_size \(vocabularySize) is outside 1...\(maximumSize)")
    }
    let files = try TokenizerFiles(folder: folder)
    if files.exists("tokenizer.model") { return .vocabulary(try sentencePiece(files, vocabularySize: vocabularySize)) }
    guard let tokenizer = files.tokenizer else {
      return .unavailable(reason: "no tokenizer.model or tokenizer.json in \(folder)")
    }
    let model = tokenizer["model"]
    guard model?["type"]?.stringValue == "BPE", model?["byte_fallback"]?.boolValue != true else {
      return .unavailable(
        reason:
          "\(files.path("tokenizer.json")) is not a byte-level BPE tokenizer and there is no tokenizer.model beside it")
    }
    guard let preTokenizer = BytePairPreTokenizer.recognise(tokenizer) else {
      return .unavailable(
        reason: "the pre-tokenizer of \(files.path("tokenizer.json")) is not one llama.cpp names (Llama 3's or GPT-2's)"
      )
    }
    return .vocabulary(try bytePair(files, preTokenizer: preTokenizer, vocabularySize: vocabularySize))
  }

  /// `tokenizer.model`: pieces in id order, padded to the model's size with `[PADi]`, then
  /// `added_tokens.json` and `tokenizer_config.json`'s `added_tokens_decoder` on top.
  static func sentencePiece(_ files: TokenizerFiles, vocabularySize: Int?) throws(CheckpointError) -> GGUFVocabulary {
    try ModelFolder.checkContained(files.path("tokenizer.model"), in: files.folder)
    let model = try SentencePieceModel.read(files.path("tokenizer.model"))
    let size = vocabularySize ?? model.pieces.count
    let pieces = model.pieces.prefix(size)
    var tokens = pieces.map(\.text) + (pieces.count..<size).map { "[PAD\($0)]" }
    var scores = pieces.map(\.score) + [Float](repeating: -10_000, count: size - pieces.count)
    // The converter asks IsUnknown/IsControl/IsUnused/IsByte: user-defined pieces stay normal.
    var types =
      pieces.map { piece -> TokenType in
        switch piece.type {
        case .unknown: .unknown
        case .control: .control
        case .unused: .unused
        case .byte: .byte
        case .normal, .userDefined: .normal
        }
      } + [TokenType](repeating: .unused, count: size - pieces.count)
    for (content, value) in try files.json("added_tokens.json")?.objectValue ?? [] {
      guard let id = value.intValue, id >= 0, id < size else { continue }
      (tokens[id], scores[id], types[id]) = (content, -1000, .userDefined)
    }
    for (key, entry) in files.tokenizerConfig?["added_tokens_decoder"]?.objectValue ?? [] {
      guard let id = Int(key), id >= 0, id < size, let content = entry["content"]?.stringValue else { continue }
      let special = entry["special"]?.boolValue == true || looksSpecial(content)
      tokens[id] = special ? content : content.replacingSpaceMarks
      (scores[id], types[id]) = (-1000, special ? .control : .userDefined)
    }
    let special = try SpecialTokens(files, vocabularySize: size, loadMerges: false)
    let kv: [(key: String, value: GGUFValue)] = [
      ("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.pre", .string("default")),
      ("tokenizer.ggml.tokens", .array(.string, tokens.map { .string($0) })),
      ("tokenizer.ggml.scores", .array(.f32, scores.map { .f32($0) })),
      ("tokenizer.ggml.token_type", .array(.i32, types.map { .i32($0.rawValue) })),
    ]
    return GGUFVocabulary(metadata: kv + special.metadata, summary: "SentencePiece tokenizer.model, \(size) tokens")
  }

  /// A byte-level BPE `tokenizer.json`: the vocabulary with its added tokens by id, padded with
  /// `[PADi]` to the model's size, and the merges.
  static func bytePair(_ files: TokenizerFiles, preTokenizer: String, vocabularySize: Int?) throws(CheckpointError)
    -> GGUFVocabulary
  {
    let path = files.path("tokenizer.json")
    guard let vocabulary = files.tokenizer?["model"]?["vocab"]?.objectValue else {
      throw .badTokenizer(path: path, message: "model.vocab is missing or not an object")
    }
    let added = files.addedTokens
    var byID: [Int: String] = [:]
    for (token, value) in vocabulary {
      guard let id = value.intValue, id >= 0 else {
        throw .badTokenizer(path: path, message: "model.vocab['\(token)'] is not a token id")
      }
      byID[id] = token
    }
    for token in added { byID[token.id] = token.content }
    let size = vocabularySize ?? byID.count
    if let largest = byID.keys.max(), largest >= size {
      throw .badTokenizer(path: path, message: "token id \(largest) is beyond the model's vocab_size \(size)")
    }
    // As the converter: a token whose text is an added token's is control when its id is
    // flagged special (or looks special), else user-defined.
    let addedTexts = Set(added.map { Array($0.content.utf8) })
    let specialIDs = Set(added.filter(\.special).map(\.id))
    var tokens: [GGUFValue] = []
    var types: [GGUFValue] = []
    tokens.reserveCapacity(size)
    types.reserveCapacity(size)
    for id in 0..<size {
      guard let token = byID[id] else {
        tokens.append(.string("[PAD\(id)]"))
        types.append(.i32(TokenType.unused.rawValue))
        continue
      }
      var type = TokenType.normal
      if addedTexts.contains(Array(token.utf8)) {
        type = specialIDs.contains(id) || looksSpecial(token) ? .control : .userDefined
      }
      tokens.append(.string(type == .userDefined ? token.replacingSpaceMarks : token))
      types.append(.i32(type.rawValue))
    }
    let specialTokens = try SpecialTokens(files, vocabularySize: nil, loadMerges: true)
    let kv: [(key: String, value: GGUFValue)] = [
      ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string(preTokenizer)),
      ("tokenizer.ggml.tokens", .array(.string, tokens)), ("tokenizer.ggml.token_type", .array(.i32, types)),
    ]
    return GGUFVocabulary(
      metadata: kv + specialTokens.metadata,
      summary: "byte-level BPE tokenizer.json (\(preTokenizer)), \(size) tokens, \(specialTokens.merges.count) merges")
  }

  /// Added tokens the converter marks as control even when not flagged special.
  static func looksSpecial(_ token: String) -> Bool {
    // Byte comparisons: Python compares code points, Swift's String canonical equivalents.
    let bytes = token.utf8
    func wrapped(_ open: String, _ close: String) -> Bool {
      bytes.starts(with: open.utf8) && bytes.reversed().starts(with: close.utf8.reversed())
    }
    return ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains { bytes.elementsEqual($0.utf8) }
      || wrapped("<|", "|>") || wrapped("<｜", "｜>") || wrapped("<unused", ">")
  }
}

extension String {
  /// SentencePiece's space mark (U+2581) as a space: llama.cpp expects user-defined tokens pre-normalised.
  var replacingSpaceMarks: String {
    var scalars = String.UnicodeScalarView()
    scalars.append(contentsOf: unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })
    return String(scalars)
  }
}
