import Testing

@testable import Checkpoints

@Suite("llama.cpp hyper-parameters from config.json")
struct LlamaExportTests {
  static func value(_ kv: [(key: String, value: GGUFValue)], _ key: String) -> GGUFValue? {
    kv.first { $0.key == key }?.value
  }

  @Test("head_dim wins over hidden/heads (Mistral-Nemo shapes); linear rope scaling; rope_theta in either place")
  func hyperParameters() throws {
    let config = try JSON.parse(
      #"""
      {"model_type": "mistral", "hidden_size": 5120, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
       "rope_theta": 1000000.0, "rope_scaling": {"type": "linear", "factor": 2.0}}
      """#, path: "config.json")
    let kv = LlamaGGUF.metadata(config: config, name: "m")
    #expect(
      Self.value(kv, "llama.rope.dimension_count") == .u32(128)
        && Self.value(kv, "llama.attention.key_length") == .u32(128))
    #expect(Self.value(kv, "llama.rope.freq_base") == .f32(1_000_000))
    #expect(
      Self.value(kv, "llama.rope.scaling.type") == .string("linear")
        && Self.value(kv, "llama.rope.scaling.factor") == .f32(2))
    #expect(LlamaGGUF.ropeFrequencyFactors(config: config) == nil)
  }

  @Test("Llama 3.1 rope factors from a transformers 4 config (rope_scaling, rope_theta at the top)")
  func llama3Factors() throws {
    let config = try JSON.parse(
      #"""
      {"hidden_size": 4096, "num_attention_heads": 32, "rope_theta": 500000.0,
       "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192}}
      """#, path: "config.json")
    let tensor = try #require(LlamaGGUF.ropeFrequencyFactors(config: config))
    #expect(tensor.name == "rope_freqs.weight" && tensor.shape == [64] && tensor.dtype == .f32)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: tensor.byteCount, alignment: 4)
    defer { buffer.deallocate() }
    try tensor.rowFill()(0..<tensor.rowCount, buffer)
    let factors = Array(buffer.bindMemory(to: Float.self))
    // High frequencies untouched, low ones divided by the factor, a smooth ramp between.
    #expect(factors.first == 1 && factors.last == 8)
    #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 <= $1 })
    #expect(factors.contains { $0 > 1 && $0 < 8 })
  }
}
