/// llama.cpp's names for the byte-level BPE pre-tokenizers of llama-family models, recognised
/// from `tokenizer.json` itself (the converter instead hashes a test text's tokens, which only
/// matches the original vocabularies, not a fine-tuned or resized one).
enum BytePairPreTokenizer {
  static let llama3Pattern =
    #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

  static func recognise(_ tokenizer: JSON) -> String? {
    guard tokenizer["normalizer"] ?? .null == .null, let pre = tokenizer["pre_tokenizer"] else { return nil }
    func byteLevel(_ item: JSON?, useRegex: Bool) -> Bool {
      item?["type"]?.stringValue == "ByteLevel" && item?["add_prefix_space"]?.boolValue == false
        && (item?["use_regex"]?.boolValue ?? true) == useRegex
    }
    if byteLevel(pre, useRegex: true) { return "gpt-2" }
    guard pre["type"]?.stringValue == "Sequence", let steps = pre["pretokenizers"]?.arrayValue, steps.count == 2 else {
      return nil
    }
    let split = steps[0]
    if split["type"]?.stringValue == "Split", split["pattern"]?["Regex"]?.stringValue == llama3Pattern,
      split["behavior"]?.stringValue == "Isolated", split["invert"]?.boolValue == false,
      byteLevel(steps[1], useRegex: false)
    {
      return "llama-bpe"
    }
    return nil
  }
}
