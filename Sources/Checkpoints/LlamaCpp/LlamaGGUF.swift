/// llama-family checkpoints between Hugging Face safetensors and llama.cpp GGUF: tensor names,
/// llama.cpp's row order of the q/k projections, and the hyper-parameters from `config.json`.
public enum LlamaGGUF {
  /// Per-layer names, Hugging Face suffix -> llama.cpp suffix.
  static let layerNames: [(hf: String, gguf: String)] = [
    ("input_layernorm.weight", "attn_norm.weight"), ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"), ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"), ("self_attn.o_proj.weight", "attn_output.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"), ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
  ]
  static let globalNames: [(hf: String, gguf: String)] = [
    ("model.embed_tokens.weight", "token_embd.weight"), ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
  ]

  /// The llama.cpp name of a Hugging Face tensor (`model.layers.3.self_attn.q_proj.weight` ->
  /// `blk.3.attn_q.weight`).
  /// - Parameter hf: a Hugging Face tensor name.
  /// - Returns: the llama.cpp name; nil for tensors llama.cpp does not use (rotary caches).
  public static func ggufName(_ hf: String) -> String? {
    if let global = globalNames.first(where: { $0.hf == hf }) { return global.gguf }
    let parts = hf.split(separator: ".", maxSplits: 3).map(String.init)
    guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
      let mapped = layerNames.first(where: { $0.hf == parts[3] })
    else { return nil }
    return "blk.\(layer).\(mapped.gguf)"
  }

  /// The Hugging Face name of a llama.cpp tensor (`blk.3.attn_q.weight` ->
  /// `model.layers.3.self_attn.q_proj.weight`).
  /// - Parameter gguf: a llama.cpp tensor name.
  /// - Returns: the Hugging Face name; nil when unknown.
  public static func hfName(_ gguf: String) -> String? {
    if let global = globalNames.first(where: { $0.gguf == gguf }) { return global.hf }
    let parts = gguf.split(separator: ".", maxSplits: 2).map(String.init)
    guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
      let mapped = layerNames.first(where: { $0.gguf == parts[2] })
    else { return nil }
    return "model.layers.\(layer).\(mapped.hf)"
  }

  // As convert_hf_to_gguf.py permutes them: q/k weights and biases.
  static let queryNames = ["self_attn.q_proj", "attn_q.weight", "attn_q.bias"]
  static let keyNames = ["self_attn.k_proj", "attn_k.weight", "attn_k.bias"]

  /// Whether a module or tensor is a q or k projection (whose rows llama.cpp permutes).
  package static func isQueryOrKey(_ name: String) -> Bool { (queryNames + keyNames).contains(where: name.hasSuffix) }

  /// Head counts from `config.json` or GGUF metadata.
  public struct Heads: Sendable, Equatable {
    /// Attention (query) heads: `num_attention_heads`, or GGUF `llama.attention.head_count`.
    public let query: Int
    /// Key/value heads: `num_key_value_heads` or `llama.attention.head_count_kv`, else the query count.
    public let keyValue: Int

    /// Counts taken as given; counts read from a file go through the checking initializer.
    /// - Parameters:
    ///   - query: attention (query) heads, at least 1.
    ///   - keyValue: key/value heads, dividing `query`.
    public init(query: Int, keyValue: Int) {
      self.query = query
      self.keyValue = keyValue
    }

    /// Counts a file gave, checked before they size anything: whole numbers in
    /// `1...maxHeads`, the KV heads dividing the query heads (grouped-query attention).
    init?(query: Double?, keyValue: Double?) {
      guard let q = Self.count(query), let kv = Self.count(keyValue ?? query), q % kv == 0 else { return nil }
      self.init(query: q, keyValue: kv)
    }

    /// More heads than any model has: a count beyond it is hostile or broken.
    static let maxHeads = 1 << 16

    static func count(_ value: Double?) -> Int? {
      guard let value, value.isFinite, value.rounded() == value, value >= 1, value <= Double(maxHeads) else {
        return nil
      }
      return Int(value)
    }
  }

  /// The row order llama.cpp's converter gives q (and, with the KV head count, k): rows `(head, half,
  /// i)` become `(head, i, half)`, as `permute()` in convert_hf_to_gguf.py.
  /// - Parameters:
  ///   - rows: the projection's output rows.
  ///   - heads: the heads they are split into.
  ///   - inverse: give the order that undoes it (llama.cpp's order back to Hugging Face's).
  /// - Returns: for each output row, the input row it comes from; the identity when `rows` is not a
  ///   whole number of head pairs.
  /// - Complexity: O(`rows`).
  public static func rowOrder(rows: Int, heads: Int, inverse: Bool) -> [Int] {
    guard heads > 0, heads <= Heads.maxHeads, rows % (2 * heads) == 0 else { return Array(0..<rows) }
    let headDim = rows / heads
    let half = headDim / 2
    var order = [Int](repeating: 0, count: rows)
    for h in 0..<heads {
      for i in 0..<half {
        for t in 0..<2 {
          let hf = h * headDim + t * half + i  // Hugging Face row
          let gguf = h * headDim + i * 2 + t  // llama.cpp row
          if inverse { order[hf] = gguf } else { order[gguf] = hf }
        }
      }
    }
    return order
  }

  /// `tensor` renamed, with its rows reordered when `order` is given (whole rows: any dtype).
  static func renamed(_ tensor: OutputTensor, to name: String, order: [Int]?) -> OutputTensor {
    guard let order, tensor.shape.count == 2 else {
      return OutputTensor(name: name, dtype: tensor.dtype, shape: tensor.shape, source: tensor.source)
    }
    // A supplied tensor keeps its key; its sink asks the supplier for the rows in this order.
    if case let .supplied(supply) = tensor.source {
      precondition(supply.rowOrder == nil, "\(tensor.name): rows reordered twice")
      return OutputTensor(
        name: name, dtype: tensor.dtype, shape: tensor.shape,
        source: .supplied(OutputTensor.Supply(key: supply.key, rowOrder: order)))
    }
    let rowBytes = tensor.rowBytes
    return OutputTensor(
      name: name, dtype: tensor.dtype, shape: tensor.shape,
      source: .rows {
        let sourceRows = try tensor.rowFill()
        return { rows, buffer in
          for (index, row) in rows.enumerated() {
            try sourceRows(
              order[row]..<(order[row] + 1),
              UnsafeMutableRawBufferPointer(rebasing: buffer[(index * rowBytes)..<((index + 1) * rowBytes)]))
          }
        }
      })
  }

  /// llama.cpp's row order for the weight `name`: a Hugging Face module (`...self_attn.q_proj`) or a
  /// llama.cpp tensor (`blk.N.attn_q.weight`); q rows by all heads, k rows by KV heads.
  ///
  /// The order is as long as the tensor's rows, which its data bounds: an empty tensor claiming 2^40
  /// rows gets none.
  ///
  /// - Parameters:
  ///   - name: the module or tensor name.
  ///   - shape: its shape, rows first.
  ///   - heads: the model's head counts.
  ///   - inverse: give the order that undoes it.
  /// - Returns: the order; nil for other names, without head counts, or when nothing moves (no rows, no
  ///   elements, rows that are not whole heads).
  /// - Complexity: O(rows).
  public static func rowOrder(for name: String, shape: [Int], heads: Heads?, inverse: Bool) -> [Int]? {
    guard let heads, let rows = shape.first, let elements = elementCount(shape), elements > 0 else { return nil }
    let count =
      queryNames.contains(where: name.hasSuffix)
      ? heads.query : keyNames.contains(where: name.hasSuffix) ? heads.keyValue : nil
    guard let count, rows % (2 * count) == 0 else { return nil }
    return rowOrder(rows: rows, heads: count, inverse: inverse)
  }

  /// Hugging Face tensors -> llama.cpp names and q/k row order, for a GGUF llama.cpp runs.
  /// - Parameters:
  ///   - tensors: a llama checkpoint's output tensors, Hugging Face names.
  ///   - heads: its head counts.
  /// - Returns: the renamed tensors (q/k rows reordered as they are written), and the names of those
  ///   llama.cpp does not use (rotary caches), left out.
  /// - Complexity: O(n) in the tensors; rows are reordered only when written.
  public static func toGGUF(_ tensors: [OutputTensor], heads: Heads) -> (tensors: [OutputTensor], dropped: [String]) {
    var kept: [OutputTensor] = []
    var dropped: [String] = []
    for tensor in tensors {
      guard let name = ggufName(tensor.name) else {
        dropped.append(tensor.name)
        continue
      }
      kept.append(
        renamed(tensor, to: name, order: rowOrder(for: name, shape: tensor.shape, heads: heads, inverse: false)))
    }
    return (kept, dropped)
  }

  /// llama.cpp GGUF tensors -> Hugging Face names and row order (unknown names kept). The rope factors
  /// are left out: Hugging Face derives them from `config.json`.
  /// - Parameters:
  ///   - tensors: a llama GGUF's output tensors.
  ///   - heads: its head counts.
  /// - Returns: the renamed tensors, q/k rows back in Hugging Face order when written.
  /// - Complexity: O(n) in the tensors.
  public static func toHF(_ tensors: [OutputTensor], heads: Heads) -> [OutputTensor] {
    tensors.filter { $0.name != "rope_freqs.weight" }.map { tensor in
      guard let name = hfName(tensor.name) else { return tensor }
      return renamed(
        tensor, to: name, order: rowOrder(for: tensor.name, shape: tensor.shape, heads: heads, inverse: true))
    }
  }

  /// The head counts of the `config.json` at `path`.
  /// - Parameter path: a Hugging Face model config.
  /// - Returns: the query and key/value head counts.
  /// - Throws: ``CheckpointError``: `bad-config` without `num_attention_heads` or with values
  ///   that are not head counts (whole numbers in 1...65536, the KV count dividing the query count);
  ///   `io`, `invalid-json` when it cannot be read.
  public static func heads(configAt path: String) throws(CheckpointError) -> Heads {
    let config = try JSON.parse(MappedFile.contents(of: path), path: path)
    guard config["num_attention_heads"] != nil else {
      throw .badModelConfig(path: path, message: "no num_attention_heads: not a llama-family config.json")
    }
    guard let heads = try heads(config: config, path: path) else {
      throw .badModelConfig(path: path, message: "no num_attention_heads")
    }
    return heads
  }

  /// The head counts of a parsed Hugging Face `config.json`.
  /// - Parameters:
  ///   - config: the parsed config.
  ///   - path: the file named in errors.
  /// - Returns: the counts; nil without `num_attention_heads`.
  /// - Throws: ``CheckpointError/badModelConfig(path:message:)`` naming the values when they are not
  ///   head counts.
  public static func heads(config: JSON, path: String) throws(CheckpointError) -> Heads? {
    guard let query = config["num_attention_heads"] else { return nil }
    let kv = config["num_key_value_heads"]
    guard let heads = Heads(query: query.doubleValue, keyValue: kv?.doubleValue ?? query.doubleValue) else {
      throw .badModelConfig(
        path: path,
        message:
          "num_attention_heads \(query.compactText) / num_key_value_heads \(kv?.compactText ?? "absent") are not head counts (whole numbers 1...\(Heads.maxHeads), the second dividing the first)"
      )
    }
    return heads
  }

  /// The head counts of a llama GGUF (`llama.attention.head_count`, `head_count_kv`).
  /// - Parameter gguf: a parsed GGUF file.
  /// - Returns: the counts; nil without `llama.attention.head_count`.
  /// - Throws: ``CheckpointError/badModelConfig(path:message:)`` naming the values when they are not
  ///   head counts.
  public static func heads(gguf: GGUFFile) throws(CheckpointError) -> Heads? {
    guard let query = gguf["llama.attention.head_count"] else { return nil }
    let kv = gguf["llama.attention.head_count_kv"]
    guard let heads = Heads(query: query.doubleValue, keyValue: kv?.doubleValue ?? query.doubleValue) else {
      throw .badModelConfig(
        path: gguf.file.path,
        message:
          "llama.attention.head_count \(query.json().compactText) / head_count_kv \(kv?.json().compactText ?? "absent") are not head counts"
      )
    }
    return heads
  }
}
