import Checkpoints

extension LoRAModule {
  /// A module whose factors a program holds (`Tensor(name:shape:values:dtype:)`): `a` `[r, k]`
  /// and `b` `[d, r]`, PyTorch order, with PEFT's scale `alpha / r` (`alpha / sqrt(r)` with rsLoRA).
  ///
  /// - Parameters:
  ///   - name: the module's name in Hugging Face form (`model.layers.0.self_attn.q_proj`).
  ///   - a: `A`, `[r, k]`.
  ///   - b: `B`, `[d, r]`.
  ///   - alpha: the LoRA alpha.
  ///   - useRSLoRA: scale by `alpha / sqrt(r)` instead of `alpha / r`.
  /// - Throws: ``AdapterError``: `bad-factor-shape` when `a` and `b` do not form a LoRA pair,
  ///   `bad-config` for an alpha that is not a finite number `>= 0`.
  public init(name: String, a: Tensor, b: Tensor, alpha: Double, useRSLoRA: Bool = false) throws(AdapterError) {
    guard alpha.isFinite, alpha >= 0 else {
      throw .badConfig(path: name, message: "alpha \(alpha) is not a finite number >= 0")
    }
    if let problem = Adapter.pairProblem(path: name, module: name, a: a, b: b, names: ("lora_A", "lora_B")) {
      throw problem
    }
    let rank = a.shape[0]
    self.init(
      name: name, kind: .linear, a: a, b: b, rank: rank, alpha: alpha,
      scale: useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank), fanInFanOut: false, bias: nil,
      magnitude: nil)
  }
}

extension Adapter {
  /// An adapter a program holds in memory, named `name` in reports and errors (it has no file, so its
  /// digest is empty): the modules, one per adapted weight, in any order.
  ///
  /// - Parameters:
  ///   - name: its path in reports, errors and provenance.
  ///   - modules: the modules; they are sorted by name.
  /// - Throws: ``AdapterError/moduleMismatch(client:module:message:)`` when two modules share a name.
  /// - Complexity: O(n log n) in the modules.
  public init(name: String, modules: [LoRAModule]) throws(AdapterError) {
    let sorted = modules.sorted { $0.name < $1.name }
    for (one, next) in zip(sorted, sorted.dropFirst()) where one.name == next.name {
      throw .moduleMismatch(client: name, module: one.name, message: "given twice")
    }
    self.init(
      path: name, format: .safetensors, config: nil,
      checkpoint: Checkpoint(inMemory: name, tensors: sorted.flatMap { [$0.a, $0.b] }), modules: sorted,
      fullTensors: [])
  }
}
