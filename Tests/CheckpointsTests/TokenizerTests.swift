import TestSupport
import Testing

@testable import Checkpoints

@Suite("Tokenizer files -> the vocabulary llama.cpp needs in GGUF")
struct TokenizerTests {
  /// The `tokenizer.*` keys of a GGUF, in file order.
  static func tokenizerKeys(_ path: String) throws -> [(key: String, value: GGUFValue)] {
    try GGUFFile(path: path).metadata.filter { $0.key.hasPrefix("tokenizer.") }
  }

  static func vocabulary(_ folder: String) throws -> GGUFVocabulary {
    let config = try Fixtures.json("tokenizers/\(folder)/config.json")
    let outcome = try GGUFVocabulary.read(
      folder: Fixtures.path("tokenizers/" + folder), vocabularySize: config["vocab_size"]?.intValue)
    guard case let .vocabulary(vocabulary) = outcome else {
      throw CheckpointError.io(path: folder, message: "no vocabulary: \(outcome)")
    }
    return vocabulary
  }

  @Test(
    "Equal, key by key and in order, to what llama.cpp's converter writes (gguf-py reference files)",
    arguments: ["llama_spm", "llama_bpe"])
  func matchesConverter(_ folder: String) throws {
    let ours = try Self.vocabulary(folder).metadata
    let reference = try Self.tokenizerKeys(Fixtures.path("tokenizers/expected/\(folder).gguf"))
    #expect(ours.map(\.key) == reference.map(\.key))
    for (mine, theirs) in zip(ours, reference) {
      #expect(mine.value == theirs.value, "\(mine.key)")
    }
  }

  @Test(
    "Special tokens, add flags and chat templates as gguf-py's SpecialVocab finds them, corner cases included",
    arguments: ["trailing_eos", "roberta", "added_token_objects", "no_tokenizer_config", "config_only"])
  func specialTokens(_ name: String) throws {
    let expected = try #require(try Fixtures.json("tokenizers/special/expected.json")[name])
    let special = try SpecialTokens(
      TokenizerFiles(folder: Fixtures.path("tokenizers/special/" + name)), vocabularySize: nil, loadMerges: false)
    let ids = (expected["ids"]?.arrayValue ?? []).compactMap { pair in
      pair.arrayValue.flatMap { p in p[0].stringValue.map { ($0, p[1].intValue ?? -1) } }
    }
    #expect(special.ids.map(\.kind) == ids.map(\.0) && special.ids.map(\.id) == ids.map(\.1))
    let flags = (expected["add"]?.arrayValue ?? []).compactMap { pair in
      pair.arrayValue.flatMap { p in p[0].stringValue.map { ($0, p[1].boolValue ?? false) } }
    }
    #expect(special.addFlags.map(\.kind) == flags.map(\.0) && special.addFlags.map(\.value) == flags.map(\.1))
    let templates: [(String, String)] =
      switch expected["chat_template"] {
      case let .string(text)?: [("default", text)]
      case let .array(list)?:
        list.map {
          (($0["name"]?.stringValue ?? "").replacingOccurrences(of: " ", with: "_"), $0["template"]?.stringValue ?? "")
        }
      default: []
      }
    #expect(
      special.chatTemplates.map(\.name) == templates.map(\.0)
        && special.chatTemplates.map(\.template) == templates.map(\.1))
  }

  @Test("SentencePiece pieces: text, score and type in id order")
  func sentencePiece() throws {
    let model = try SentencePieceModel.read(Fixtures.path("tokenizers/llama_spm/tokenizer.model"))
    #expect(model.pieces.count == 360)
    #expect(model.pieces[0] == .init(text: "<unk>", score: 0, type: .unknown))
    #expect(model.pieces[1].type == .control && model.pieces[2].text == "</s>")
    #expect(model.pieces[3] == .init(text: "<sep>", score: 0, type: .userDefined))
    #expect(model.pieces[4] == .init(text: "<0x00>", score: 0, type: .byte))
    #expect(model.pieces[300] == .init(text: "ank", score: -40, type: .normal))
  }

  @Test("The SentencePiece vocabulary: padded to the model's size, added tokens typed as the converter types them")
  func sentencePieceTokens() throws {
    let kv = try Self.vocabulary("llama_spm").metadata
    guard case let .array(_, tokens)? = kv.first(where: { $0.key == "tokenizer.ggml.tokens" })?.value,
      case let .array(_, types)? = kv.first(where: { $0.key == "tokenizer.ggml.token_type" })?.value
    else {
      Issue.record("no token list")
      return
    }
    #expect(tokens.count == 368 && tokens[367] == .string("[PAD367]") && types[367] == .i32(5))
    #expect(tokens[360] == .string("<|user|>") && types[360] == .i32(3))  // special -> control
    #expect(tokens[361] == .string("<extra>") && types[361] == .i32(4))  // plain -> user-defined
    #expect(types[3] == .i32(1))  // a user-defined piece of the model stays normal, as in the converter
  }

  @Test("Malformed tokenizer.model files are refused with bad-tokenizer and never crash")
  func malformedSentencePiece() throws {
    let folder = Fixtures.scratch("spm")
    let good = try MappedFile.contents(of: Fixtures.path("tokenizers/llama_spm/tokenizer.model"))
    var refused = 0
    for cut in stride(from: 1, to: good.count, by: 37) {
      Fixtures.write(Array(good[0..<cut]), to: folder + "/tokenizer.model")
      do {
        _ = try SentencePieceModel.read(folder + "/tokenizer.model")
      } catch {
        #expect(error.code == "bad-tokenizer" && error.description.contains("tokenizer.model"))
        refused += 1
      }
    }
    #expect(refused > 100)  // truncations on a piece boundary still parse as a shorter model
    for (bytes, message) in [
      ([0x0A, 0x05, 0x0A, 0x02, 0xC3, 0x28, 0x10], "not UTF-8"),  // piece text 0xC3 0x28
      ([0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], "varint"),
      ([0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], "runs past the end"),  // a 4 GB field in 6 bytes
      ([0x0A, 0x04, 0x0A, 0x00, 0x18, 0x09], "unknown type 9"),
      ([0x13], "wire type 3"),
      ([0x12, 0x00], "no pieces"),
    ] as [([UInt8], String)] {
      Fixtures.write(bytes, to: folder + "/tokenizer.model")
      #expect(throws: CheckpointError.self) { try SentencePieceModel.read(folder + "/tokenizer.model") }
      do { _ = try SentencePieceModel.read(folder + "/tokenizer.model") } catch {
        #expect(error.description.contains(message), "\(error)")
      }
    }
  }

  @Test(
    "Mutated tokenizer files end in a vocabulary or an error, never a crash",
    arguments: ["llama_spm/tokenizer.model", "llama_spm/tokenizer_config.json", "llama_bpe/tokenizer.json"])
  func mutations(_ fixture: String) throws {
    let (model, file) = (String(fixture.split(separator: "/")[0]), String(fixture.split(separator: "/")[1]))
    let folder = Fixtures.scratch("tok-mutation")
    for name in Checkpoint.listDirectory(Fixtures.path("tokenizers/" + model)) where !name.hasSuffix(".safetensors") {
      Fixtures.write(try Fixtures.read(Fixtures.path("tokenizers/\(model)/\(name)")), to: folder + "/" + name)
    }
    let original = try Fixtures.read(Fixtures.path("tokenizers/" + fixture))
    let size = try Fixtures.json("tokenizers/\(model)/config.json")["vocab_size"]?.intValue
    var generator = SeededGenerator(seed: UInt64(original.count))
    var refused = 0
    for round in 0..<600 {
      var bytes = original
      if round % 3 == 0 {
        bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
      } else {
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
          bytes[Int.random(in: 0..<bytes.count, using: &generator)] =
            round % 5 == 0 ? 0xFF : UInt8.random(in: 0...255, using: &generator)
        }
      }
      Fixtures.write(bytes, to: folder + "/" + file)
      do { _ = try GGUFVocabulary.read(folder: folder, vocabularySize: size) } catch {
        #expect(
          error.code == "bad-tokenizer" || error.code == "invalid-json" || error.code == "invalid-utf8"
            || error.code == "duplicate-key", "\(error)")
        refused += 1
      }
    }
    #expect(refused > 50)
  }

  @Test("A folder without a convertible tokenizer says why; a token id beyond the model's size is an error")
  func unavailable() throws {
    let folder = Fixtures.scratch("tok")
    guard case let .unavailable(reason) = try GGUFVocabulary.read(folder: folder, vocabularySize: 8) else {
      Issue.record("an empty folder gave a vocabulary")
      return
    }
    #expect(reason.contains("no tokenizer.model or tokenizer.json"))
    let original = try Fixtures.json("tokenizers/llama_bpe/tokenizer.json")
    let other = original.setting("pre_tokenizer", to: .object([("type", .string("Whitespace"))]))
    Fixtures.write(Array(other.prettyText.utf8), to: folder + "/tokenizer.json")
    guard case let .unavailable(why) = try GGUFVocabulary.read(folder: folder, vocabularySize: nil) else {
      Issue.record("an unknown pre-tokenizer gave a vocabulary")
      return
    }
    #expect(why.contains("pre-tokenizer"))
    Fixtures.write(Array(original.prettyText.utf8), to: folder + "/tokenizer.json")
    #expect(
      throws: CheckpointError.badTokenizer(
        path: folder + "/tokenizer.json", message: "token id 422 is beyond the model's vocab_size 100")
    ) {
      try GGUFVocabulary.read(folder: folder, vocabularySize: 100)
    }
    // A claimed vocab_size is checked before the padded token list is allocated.
    #expect(
      throws: CheckpointError.badTokenizer(
        path: folder + "/config.json", message: "vocab_size 1099511627776 is outside 1...16777216")
    ) {
      try GGUFVocabulary.read(folder: folder, vocabularySize: 1 << 40)
    }
    // Token ids far beyond the model's size, in either file, are refused without allocating for them.
    let farID = original.setting(
      "added_tokens", to: .array([.object([("id", JSON(1 << 50)), ("content", .string("<x>"))])]))
    Fixtures.write(Array(farID.prettyText.utf8), to: folder + "/tokenizer.json")
    #expect(throws: CheckpointError.self) { try GGUFVocabulary.read(folder: folder, vocabularySize: 423) }
  }
}
