#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// A Hugging Face llama-family checkpoint as llama.cpp runs it from one GGUF: tensors renamed
/// and reordered, the hyper-parameters of `config.json`, rotary scaling, and the vocabulary of
/// the tokenizer files, as llama.cpp's `convert_hf_to_gguf.py` writes them.
extension LlamaGGUF {
  /// What `export` produces: the GGUF tensors and metadata, and what was left out.
  public struct Export: Sendable {
    /// Tensors under llama.cpp's names with q/k rows permuted; rotary frequency factors, when any, first.
    public let tensors: [OutputTensor]
    /// `general.*` and `llama.*` keys from `config.json`, then the vocabulary's `tokenizer.*` keys when there is one.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensors llama.cpp does not use, left out.
    public let dropped: [String]
    /// The vocabulary, or why none could be built (then `metadata` has no `tokenizer.*` keys).
    public let vocabulary: GGUFVocabulary.Outcome
  }

  /// `tensors` (Hugging Face names) for llama.cpp, with what the folder's `config.json` and tokenizer
  /// files say.
  /// - Parameters:
  ///   - tensors: a llama or Mistral checkpoint's output tensors.
  ///   - folder: the model folder holding `config.json` and the tokenizer files.
  /// - Returns: the GGUF tensors and metadata; nil when the folder has no llama-family `config.json`
  ///   (`model_type` llama or mistral, with head counts).
  /// - Throws: ``CheckpointError``: `bad-config`, `bad-tokenizer`, `invalid-json`, `io` for
  ///   config or tokenizer files that cannot be read or say what cannot be.
  /// - Complexity: O(tokenizer bytes + tensors); no tensor data is read (that happens when the GGUF is
  ///   written).
  public static func export(_ tensors: [OutputTensor], folder: String) throws(CheckpointError) -> Export? {
    let configPath = folder + "/config.json"
    guard Checkpoint.isFile(configPath) else { return nil }
    let config = try JSON.parse(MappedFile.contents(of: configPath), path: configPath)
    guard ["llama", "mistral"].contains(config["model_type"]?.stringValue ?? ""),
      let heads = try heads(config: config, path: configPath)
    else { return nil }
    let (renamed, dropped) = toGGUF(tensors, heads: heads)
    let vocabulary = try GGUFVocabulary.read(folder: folder, vocabularySize: config["vocab_size"]?.intValue)
    let name =
      config["_name_or_path"]?.stringValue
      ?? (folder == "." ? "model" : String(folder.split(separator: "/").last ?? "model"))
    var kv = metadata(config: config, name: name)
    if case let .vocabulary(vocabulary) = vocabulary { kv += vocabulary.metadata }
    // The converter writes its extra tensors first.
    let extra = ropeFrequencyFactors(config: config).map { [$0] } ?? []
    return Export(tensors: extra + renamed, metadata: kv, dropped: dropped, vocabulary: vocabulary)
  }

  /// The llama hyper-parameters llama.cpp reads, from `config.json` (keys whose value the config lacks
  /// are left out).
  /// - Parameters:
  ///   - config: the parsed `config.json`.
  ///   - name: the model's `general.name`.
  /// - Returns: `general.architecture`, `general.name` and the `llama.*` keys, in the converter's
  ///   order.
  public static func metadata(config: JSON, name: String) -> [(key: String, value: GGUFValue)] {
    func int(_ key: String) -> Int? { config[key]?.intValue }
    var kv: [(key: String, value: GGUFValue)] = [
      ("general.architecture", .string("llama")), ("general.name", .string(name)),
    ]
    let heads = int("num_attention_heads")
    let rope = Rope(config: config)
    for (key, value) in [
      ("llama.context_length", int("max_position_embeddings")), ("llama.embedding_length", int("hidden_size")),
      ("llama.block_count", int("num_hidden_layers")), ("llama.feed_forward_length", int("intermediate_size")),
      ("llama.attention.head_count", heads), ("llama.attention.head_count_kv", int("num_key_value_heads") ?? heads),
      ("llama.attention.key_length", int("head_dim")), ("llama.attention.value_length", int("head_dim")),
      ("llama.rope.dimension_count", rope.dimension), ("llama.vocab_size", int("vocab_size")),
    ] {
      if let value { kv.append((key, .u32(UInt32(clamping: value)))) }
    }
    kv.append(("llama.rope.freq_base", .f32(Float(rope.theta))))
    if let type = rope.scalingType, let factor = rope.factor, ["linear", "yarn"].contains(type) {
      kv.append(("llama.rope.scaling.type", .string(type)))
      kv.append(("llama.rope.scaling.factor", .f32(Float(factor))))
      if type == "yarn", let original = rope.originalContext {
        kv.append(("llama.rope.scaling.original_context_length", .u32(UInt32(clamping: original))))
      }
    }
    kv.append(("llama.attention.layer_norm_rms_epsilon", .f32(Float(config["rms_norm_eps"]?.doubleValue ?? 1e-6))))
    return kv
  }

  /// The rotary embedding of a config: transformers 5 keeps it in `rope_parameters`, earlier
  /// versions in `rope_theta` and `rope_scaling`.
  struct Rope {
    let theta: Double
    let dimension: Int?
    let scalingType: String?
    let parameters: JSON?

    init(config: JSON) {
      parameters = config["rope_parameters"] ?? config["rope_scaling"]
      theta = config["rope_theta"]?.doubleValue ?? parameters?["rope_theta"]?.doubleValue ?? 10_000
      // Checked before they size the rope factors: a positive head count, a head dimension of
      // at most maxDimension (hidden_size -2^63 over -1 heads, or head_dim 1e12, never reach a loop).
      let heads = Heads.count(config["num_attention_heads"]?.doubleValue)
      let derived = config["hidden_size"]?.intValue.flatMap { hidden in heads.map { hidden > 0 ? hidden / $0 : 0 } }
      dimension = (config["head_dim"]?.intValue ?? derived).flatMap { (1...Self.maxDimension).contains($0) ? $0 : nil }
      scalingType = (parameters?["rope_type"] ?? parameters?["type"])?.stringValue?.lowercased()
    }

    /// More than any model's head dimension.
    static let maxDimension = 1 << 16

    var factor: Double? { parameters?["factor"]?.doubleValue }
    var originalContext: Int? { parameters?["original_max_position_embeddings"]?.intValue }
  }

  /// Llama 3.1's rotary scaling (`rope_type` llama3) as llama.cpp takes it: a divisor per
  /// frequency in `rope_freqs.weight` (F32), computed as the converter computes it.
  static func ropeFrequencyFactors(config: JSON) -> OutputTensor? {
    let rope = Rope(config: config)
    guard rope.scalingType == "llama3", let dimension = rope.dimension, dimension >= 2 else { return nil }
    let factor = Float(rope.factor ?? 8)
    let low = Float(rope.parameters?["low_freq_factor"]?.doubleValue ?? 1)
    let high = Float(rope.parameters?["high_freq_factor"]?.doubleValue ?? 4)
    let original = Float(rope.originalContext ?? config["original_max_position_embeddings"]?.intValue ?? 8192)
    let (lowWavelength, highWavelength) = (original / low, original / high)
    let factors: [Float] = stride(from: 0, to: dimension, by: 2).map { i in
      let frequency = 1 / powf(Float(rope.theta), Float(i) / Float(dimension))
      let wavelength = 2 * Float.pi / frequency
      if wavelength < highWavelength { return 1 }
      if wavelength > lowWavelength { return factor }
      let smooth = (original / wavelength - low) / (high - low)
      return 1 / ((1 - smooth) / factor + smooth)
    }
    return OutputTensor(name: "rope_freqs.weight", dtype: .f32, shape: [factors.count], values: factors)
  }
}
