import Checkpoints

extension Adapter {
  /// llama.cpp: `<base>.lora_a` `[r, in]` and `<base>.lora_b` `[out, r]`, one `adapter.lora.alpha`
  /// for the file; the scale is alpha / r (alpha 0 means scale 1, as llama.cpp applies it).
  static func loadGGUF(_ checkpoint: Checkpoint, alpha: Double?, heads: LlamaGGUF.Heads?, lenient: Bool)
    throws(AdapterError) -> Adapter
  {
    let path = checkpoint.path
    let fileAlpha = checkpoint.gguf?["adapter.lora.alpha"]?.doubleValue ?? alpha ?? 0
    // A NaN or infinite alpha would scale every factor to NaN.
    guard fileAlpha.isFinite, fileAlpha >= 0 else {
      throw .badConfig(path: path, message: "adapter.lora.alpha is \(fileAlpha): not a finite number >= 0")
    }
    var pairs: [String: (a: Tensor?, b: Tensor?)] = [:]
    var full: [Tensor] = []
    for tensor in checkpoint.tensors {
      if tensor.name.hasSuffix(".lora_a") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].a = tensor
      } else if tensor.name.hasSuffix(".lora_b") {
        pairs[String(tensor.name.dropLast(7)), default: (nil, nil)].b = tensor
      } else {
        full.append(tensor)
      }
    }
    var modules: [LoRAModule] = []
    var problems: [AdapterError] = []
    for (base, pair) in pairs.sorted(by: { $0.key < $1.key }) {
      let name = ModuleName.fromGGUF(base)
      if let problem = pairProblem(
        path: path, module: name, a: pair.a, b: pair.b, names: (base + ".lora_a", base + ".lora_b"))
      {
        guard lenient else { throw problem }
        problems.append(problem)
        continue
      }
      guard let a = pair.a, let b = pair.b else { continue }
      let rank = a.shape[0]
      modules.append(
        LoRAModule(
          name: name, kind: name.hasSuffix("embed_tokens") ? .embedding : .linear, a: a, b: b, rank: rank,
          alpha: fileAlpha,
          scale: fileAlpha == 0 ? 1 : fileAlpha / Double(rank), fanInFanOut: false, bias: nil, magnitude: nil))
    }
    guard !modules.isEmpty || !problems.isEmpty else { throw .noAdapterTensors(path: path) }
    modules.sort { $0.name < $1.name }
    var adapter = Adapter(
      path: path, format: .gguf, config: nil, checkpoint: checkpoint, modules: modules, fullTensors: full)
    adapter.problems = problems
    // q/k rows: as the file records them, else (another tool's llama LoRA) in llama.cpp's order,
    // which needs head counts: given, or resolved later (QKRowOrder.resolve), never guessed.
    let recorded =
      try AdapterError.wrap { () throws(CheckpointError) in
        try checkpoint.gguf.map { gguf throws(CheckpointError) in try QKRowOrder.recorded(in: gguf, path: path) } ?? nil
      }
    switch recorded {
    case let .some(.some(own)): return adapter.withRowOrder(own)
    case .some(nil): return adapter
    case nil:
      guard QKRowOrder.isPermuted(architecture: adapter.architecture ?? "llama", modules: modules.map(\.name)) else {
        return adapter
      }
      guard let heads else {
        adapter.pendingRowOrder = true
        return adapter
      }
      return adapter.withRowOrder(heads)
    }
  }
}
