/// The tokenizer files of a Hugging Face model folder, parsed once: `tokenizer.json` (and its
/// added tokens), `tokenizer_config.json` and `config.json` (each nil or empty when absent).
struct TokenizerFiles {
  let folder: String
  let tokenizer: JSON?
  let tokenizerConfig: JSON?
  let config: JSON?
  /// `tokenizer.json`'s `added_tokens`: id, content and the special flag of each.
  let addedTokens: [(id: Int, content: String, special: Bool)]

  init(folder: String) throws(CheckpointError) {
    self.folder = folder
    tokenizer = try Self.json(folder, "tokenizer.json")
    tokenizerConfig = try Self.json(folder, "tokenizer_config.json")
    config = try Self.json(folder, "config.json")
    addedTokens = try Self.addedTokens(tokenizer, path: folder + "/tokenizer.json")
  }

  func path(_ name: String) -> String { folder + "/" + name }

  func exists(_ name: String) -> Bool { Checkpoint.isFile(path(name)) }

  /// A JSON file of the folder, nil when there is none.
  func json(_ name: String) throws(CheckpointError) -> JSON? { try Self.json(folder, name) }

  func text(_ name: String) throws(CheckpointError) -> String? {
    guard exists(name) else { return nil }
    let bytes = try ModelFolder.contents(of: name, in: folder)
    guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8(path: path(name), offset: 0) }
    return text
  }

  private static func json(_ folder: String, _ name: String) throws(CheckpointError) -> JSON? {
    let path = folder + "/" + name
    guard Checkpoint.isFile(path) else { return nil }
    return try JSON.parse(ModelFolder.contents(of: name, in: folder), path: path)
  }

  private static func addedTokens(_ tokenizer: JSON?, path: String) throws(CheckpointError) -> [(
    id: Int, content: String, special: Bool
  )] {
    guard let list = tokenizer?["added_tokens"] else { return [] }
    guard let entries = list.arrayValue else { throw .badTokenizer(path: path, message: "added_tokens is not a list") }
    var tokens: [(id: Int, content: String, special: Bool)] = []
    for (index, entry) in entries.enumerated() {
      guard let id = entry["id"]?.intValue, id >= 0, let content = entry["content"]?.stringValue else {
        throw .badTokenizer(path: path, message: "added_tokens[\(index)] needs a non-negative id and a content string")
      }
      tokens.append((id, content, entry["special"]?.boolValue ?? false))
    }
    return tokens
  }
}
