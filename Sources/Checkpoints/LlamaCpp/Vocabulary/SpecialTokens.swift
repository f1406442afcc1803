/// The special tokens, add-token flags, chat template and merges of a model folder, found as
/// gguf-py's `SpecialVocab` finds them (llama.cpp's converter uses it for every model):
/// `tokenizer.json` (added tokens, the post-processor's template), `tokenizer_config.json`
/// (`*_token`, `add_*_token`, `chat_template`), `chat_template.jinja`/`.json`, then
/// `config.json` (`*_token_id`). The first source naming a token wins.
struct SpecialTokens {
  /// Token ids by kind, in the order found (`bos`, `eos`, `unk`, ...).
  private(set) var ids: [(kind: String, id: Int)] = []
  /// `add_bos_token` and the like, in the order found.
  private(set) var addFlags: [(kind: String, value: Bool)] = []
  /// One template, or named templates (`default` first among them).
  private(set) var chatTemplates: [(name: String, template: String)] = []
  private(set) var merges: [String] = []

  private var kinds = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
  private let vocabularySize: Int?

  init(_ files: TokenizerFiles, vocabularySize: Int?, loadMerges: Bool) throws(CheckpointError) {
    self.vocabularySize = vocabularySize
    if loadMerges { merges = try Self.merges(files) }
    try readTokenizerFiles(files)
    try readConfig(files)
  }

  /// The GGUF keys llama.cpp reads (kinds without a key, such as `cls`, are left out as gguf-py does).
  var metadata: [(key: String, value: GGUFValue)] {
    let idKeys = [
      "bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id", "sep": "seperator_token_id",
      "pad": "padding_token_id", "mask": "mask_token_id", "eot": "eot_token_id", "eom": "eom_token_id",
    ]
    var kv: [(key: String, value: GGUFValue)] = []
    if !merges.isEmpty { kv.append(("tokenizer.ggml.merges", .array(.string, merges.map { .string($0) }))) }
    for (kind, id) in ids {
      if let key = idKeys[kind] { kv.append(("tokenizer.ggml." + key, .u32(UInt32(id)))) }
    }
    for (kind, value) in addFlags where ["bos", "eos", "sep"].contains(kind) {
      kv.append(("tokenizer.ggml.add_\(kind)_token", .bool(value)))
    }
    let named = chatTemplates.filter { $0.name != "default" }
    for (name, template) in named { kv.append(("tokenizer.chat_template.\(name)", .string(template))) }
    if !named.isEmpty { kv.append(("tokenizer.chat_templates", .array(.string, named.map { .string($0.name) }))) }
    if let main = chatTemplates.first(where: { $0.name == "default" }) {
      kv.append(("tokenizer.chat_template", .string(main.template)))
    }
    return kv
  }

  /// Records a special token id; like gguf-py's SpecialVocab, ids no vocabulary can hold
  /// (negative, beyond the model's size, or beyond GGUF's u32) are left out.
  private mutating func setID(_ kind: String, _ id: Int?) {
    guard let id, id >= 0, id <= Int(UInt32.max), !ids.contains(where: { $0.kind == kind }) else { return }
    if let vocabularySize, id >= vocabularySize { return }
    ids.append((kind, id))
  }

  private mutating func setFlag(_ kind: String, _ value: Bool) {
    if let index = addFlags.firstIndex(where: { $0.kind == kind }) {
      addFlags[index].value = value
    } else {
      addFlags.append((kind, value))
    }
  }

  // MARK: Sources

  private mutating func readTokenizerFiles(_ files: TokenizerFiles) throws(CheckpointError) {
    let added = files.addedTokens
    var config = files.tokenizerConfig  // gguf-py edits its copy of tokenizer_config as it goes
    if let tokenizer = files.tokenizer {
      var names = Names(config: config)
      if names.bos?.isTruthy != true, names.cls?.isTruthy == true {
        names.bos = names.set("bos", names.cls, in: &config)
      }
      if names.eos?.isTruthy != true, names.sep?.isTruthy == true {
        names.eos = names.set("eos", names.sep, in: &config)
      }
      let postProcessor = tokenizer["post_processor"]
      let processors = postProcessor?["processors"]?.arrayValue ?? postProcessor.map { [$0] } ?? []
      for processor in processors {
        switch processor["type"]?.stringValue {
        case "RobertaProcessing":
          for kind in ["bos", "eos", "sep"] { setFlag(kind, true) }
          if names.cls?.isTruthy != true {
            names.cls = names.set("cls", processor["cls"]?.arrayValue?.first ?? names.bos, in: &config)
          }
          if names.sep?.isTruthy != true {
            names.sep = names.set("sep", processor["sep"]?.arrayValue?.first ?? names.eos, in: &config)
          }
        case "TemplateProcessing":
          readTemplate(processor, names: &names, config: &config)
        default: break
        }
      }
    }
    guard let config, config.isTruthy else { return }
    try readChatTemplate(files, config: config)
    for kind in kinds {
      if let flag = config["add_\(kind)_token"]?.boolValue { setFlag(kind, flag) }
      guard let content = config["\(kind)_token"]?.stringValue ?? config["\(kind)_token"]?["content"]?.stringValue
      else { continue }
      setID(kind, added.first { $0.content.utf8.elementsEqual(content.utf8) }?.id)
    }
  }

  /// The special token names gguf-py tracks while reading the post-processor (strings, or
  /// AddedToken objects, which never equal a template's token, as in Python).
  private struct Names {
    var bos, eos, cls, sep: JSON?
    let hasConfig: Bool

    init(config: JSON?) {
      (bos, eos, cls, sep) = (config?["bos_token"], config?["eos_token"], config?["cls_token"], config?["sep_token"])
      hasConfig = config?.isTruthy == true
    }

    /// Writes `<kind>_token` into the config copy (when there is a config) and returns the value.
    func set(_ kind: String, _ value: JSON?, in config: inout JSON?) -> JSON? {
      if hasConfig, let value { config = config?.setting("\(kind)_token", to: value) }
      return hasConfig ? value : nil
    }

    static func isOneOf(_ name: String, _ candidates: JSON?...) -> Bool { candidates.contains { $0 == .string(name) } }
  }

  /// gguf-py's reading of a `TemplateProcessing`: a leading special token means "add BOS", a
  /// trailing one "add EOS" (an EOS other than the config's becomes EOS, the old one EOT), and a
  /// separator between A and B in the pair template "add SEP".
  private mutating func readTemplate(_ processor: JSON, names: inout Names, config: inout JSON?) {
    func special(_ item: JSON?) -> String? {
      item?["SpecialToken"]?["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
    }
    let single = processor["single"]?.arrayValue ?? []
    var first: String?
    var last: String?
    if single.count > 1 {
      first = special(single.first)
      if let first {
        if !names.hasConfig { names.bos = .string(first) }
        setFlag("bos", Names.isOneOf(first, names.bos, names.cls))
      }
      last = special(single.last)
      if let last {
        if !names.hasConfig {
          names.eos = .string(last)
        } else if names.eos != .string(last) {
          for extra in ["eot", "eom"] where !kinds.contains(extra) {
            kinds.append(extra)
            _ = names.set(extra, names.eos, in: &config)
            break
          }
          names.eos = names.set("eos", .string(last), in: &config)
        }
        setFlag("eos", names.eos == .string(last))
      }
    }
    var pair = processor["pair"]?.arrayValue ?? []
    guard !pair.isEmpty else { return }
    let start = first != nil && special(pair.first) == first ? 1 : 0
    let stop = last != nil && special(pair.last) == last ? pair.count - 1 : pair.count
    pair = start < stop ? Array(pair[start..<stop]) : []
    guard pair.count > 2, pair.first?["Sequence"]?["id"]?.stringValue == "A",
      pair.last?["Sequence"]?["id"]?.stringValue == "B"
    else { return }
    let middle = pair[1..<(pair.count - 1)]
    var addSeparator = false
    if let entry = special(middle.first), Names.isOneOf(entry, names.sep, names.eos), last == nil {
      addSeparator = true
    }
    if middle.count == 2, let entry = special(middle.last), Names.isOneOf(entry, names.sep, names.eos) {
      addSeparator = true
    }
    setFlag("sep", addSeparator)
    if addSeparator, names.sep?.isTruthy != true { _ = names.set("sep", names.eos, in: &config) }
  }

  private mutating func readChatTemplate(_ files: TokenizerFiles, config: JSON) throws(CheckpointError) {
    var alternative: [(name: String, template: String)] = []
    if let jinja = try files.text("chat_template.jinja") {
      alternative = [("default", jinja)]
      let extra = files.path("additional_chat_templates")
      for name in Checkpoint.listDirectory(extra) where name.hasSuffix(".jinja") {
        if let text = try files.text("additional_chat_templates/" + name) {
          alternative.append((String(name.dropLast(6)), text))
        }
      }
    } else if let json = try files.json("chat_template.json") {
      alternative = Self.templates(json["chat_template"])
    }
    guard let entry = config["chat_template"] else {
      chatTemplates = alternative
      return
    }
    chatTemplates = Self.templates(entry)
  }

  /// A chat template entry: a string, or a list of `{name, template}` (names made alphanumeric).
  private static func templates(_ entry: JSON?) -> [(name: String, template: String)] {
    if let text = entry?.stringValue { return [("default", text)] }
    return (entry?.arrayValue ?? []).compactMap { choice in
      guard let name = choice["name"]?.stringValue, !name.isEmpty, let template = choice["template"]?.stringValue else {
        return nil
      }
      let clean = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
      return (clean, template)
    }
  }

  private mutating func readConfig(_ files: TokenizerFiles) throws(CheckpointError) {
    guard let config = files.config else { return }
    for kind in kinds {
      setID(kind, (config["\(kind)_token_id"] ?? config["text_config"]?["\(kind)_token_id"])?.intValue)
    }
  }

  /// `tokenizer.json`'s merges ("a b" strings, or [a, b] pairs whose spaces become U+0120), else `merges.txt`.
  private static func merges(_ files: TokenizerFiles) throws(CheckpointError) -> [String] {
    if let list = files.tokenizer?["model"]?["merges"]?.arrayValue, !list.isEmpty {
      var merges: [String] = []
      merges.reserveCapacity(list.count)
      for (index, entry) in list.enumerated() {
        if let text = entry.stringValue {
          merges.append(text)
        } else if let pair = entry.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue
        {
          merges.append(escapeSpaces(a) + " " + escapeSpaces(b))
        } else {
          throw .badTokenizer(
            path: files.path("tokenizer.json"), message: "model.merges[\(index)] is neither \"a b\" nor [a, b]")
        }
      }
      return merges
    }
    guard let text = try files.text("merges.txt") else { return [] }
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingWhitespace }
    if lines.first?.hasPrefix("#") == true { lines.removeFirst() }
    return lines.compactMap { line in
      let parts = line.split(whereSeparator: \.isWhitespace)
      return parts.count == 2 ? "\(parts[0]) \(parts[1])" : nil
    }
  }

  private static func escapeSpaces(_ part: String) -> String {
    part.contains(" ") ? String(part.map { $0 == " " ? "\u{0120}" : $0 }) : part
  }
}

extension JSON {
  /// Python truthiness: null, false, 0, "" and empty containers are false.
  var isTruthy: Bool {
    switch self {
    case .null: false
    case let .bool(b): b
    case let .number(n): Double(n) != 0
    case let .string(s): !s.isEmpty
    case let .array(a): !a.isEmpty
    case let .object(o): !o.isEmpty
    }
  }
}

extension Substring {
  var trimmingWhitespace: Substring {
    var s = self
    while s.first?.isWhitespace == true { s.removeFirst() }
    while s.last?.isWhitespace == true { s.removeLast() }
    return s
  }
}
