import Checkpoints

/// Writes a merged adapter as a PEFT folder, a bare safetensors file or a llama.cpp GGUF LoRA.
public enum AdapterWriter {

  /// Provenance recorded in the output's metadata: the method, each client's path (in one
  /// normal form) and the SHA-256 of its weight file (files joined by "+"), the weights used,
  /// the rank asked for, the version.
  public struct Provenance: Sendable, Equatable {
    /// The aggregation method's name.
    public var method: String
    /// Each client's path, in one normal form (``normalizedPath(_:)``: `./c0` is `c0`).
    public var clients: [String]
    /// Each client's weight-file SHA-256, in client order; empty in records of earlier versions.
    public var digests: [String]
    /// The weights the merge used, in client order.
    public var weights: [Double]
    /// The fedlora version that wrote it (empty when not recorded).
    public var version: String
    /// The recipe the merge was run from (`merge --recipe`), as written.
    public var recipe: String?
    /// The output rank asked for (`--rank` of svd), when one was.
    public var rank: Int?
    /// A provenance from its fields, without a recipe.
    public init(method: String, clients: [String], digests: [String], weights: [Double], version: String) {
      self.method = method
      self.clients = clients
      self.digests = digests
      self.weights = weights
      self.version = version
    }

    /// The provenance of a merge of `set`: paths in normal form, digests of what was read
    /// (none when `hashing` is false: a dry run records nothing, so it hashes nothing).
    public init(method: String, set: ClientSet, version: String, hashing: Bool = true) throws(AdapterError) {
      // In parallel: hashing every byte of every client is a tenth of a merge's work.
      let digests =
        hashing
        ? try parallelMap(set.clients) { client throws(AdapterError) in
          try AdapterError.wrap { () throws(CheckpointError) in try client.weightDigest() }
        } : []
      // Adapters held in memory have no file to hash: then no digests are recorded (an audit
      // matches clients by position), rather than empty ones that would all match each other.
      self.init(
        method: method, clients: set.clients.map { normalizedPath($0.path) },
        digests: digests.contains("") ? [] : digests,
        weights: set.weights, version: version)
    }

    /// The `fedlora.*` metadata entries that record it in an output.
    public var metadata: [(key: String, value: String)] {
      [
        ("fedlora.method", method), ("fedlora.version", version),
        ("fedlora.clients", JSON.array(clients.map { .string($0) }).compactText),
        ("fedlora.client_sha256", JSON.array(digests.map { .string($0) }).compactText),
        ("fedlora.weights", JSON.array(weights.map { JSON($0) }).compactText),
      ] + (rank.map { [("fedlora.rank", "\($0)")] } ?? []) + (recipe.map { [("fedlora.recipe", $0)] } ?? [])
    }

    /// What an adapter fedlora wrote recorded of its making; nil for other adapters (or
    /// entries that do not parse). Outputs of earlier versions have no digests.
    public init?(recordedIn adapter: Adapter) {
      let entries = Dictionary(adapter.metadataStrings, uniquingKeysWith: { first, _ in first })
      func list(_ key: String) -> [JSON]? {
        entries[key].flatMap { try? JSON.parse(Array($0.utf8), path: key) }?.arrayValue
      }
      guard let method = entries["fedlora.method"], let clients = list("fedlora.clients")?.compactMap(\.stringValue),
        let weights = list("fedlora.weights")?.compactMap(\.doubleValue), weights.count == clients.count
      else { return nil }
      let digests = list("fedlora.client_sha256")?.compactMap(\.stringValue) ?? []
      self.init(
        method: method, clients: clients, digests: digests, weights: weights, version: entries["fedlora.version"] ?? "")
      rank = entries["fedlora.rank"].flatMap { Int($0) }
    }
  }

  /// The files a PEFT folder output consists of (all that writing one replaces in a folder).
  public static let peftFiles = ["adapter_model.safetensors", "adapter_config.json"]

  /// How one module's solved factors become the bytes of its two tensors (in the output's dtype,
  /// B's scale and q/k row order as the format wants them).
  struct ModuleTensors: Sendable {
    let names: (a: String, b: String)
    let bFactor: Double
    let rowOrder: [Int]?
    let dtype: DType
    /// Stored transposed (MLX-LM's `lora_a` `[in, r]`, `lora_b` `[r, out]`).
    var transposed = false

    /// The bytes of `Ah` and `Bh`, keyed by tensor name.
    func encode(_ estimate: ModuleEstimate) -> [(key: String, bytes: [UInt8])] {
      if transposed {
        return [
          (names.a, bytes(estimate.a.transposed.values, scale: 1, dtype: dtype)),
          (names.b, bytes(estimate.b.transposed.values, scale: bFactor, dtype: dtype)),
        ]
      }
      return [
        (names.a, bytes(estimate.a.values, scale: 1, dtype: dtype)),
        (names.b, bytes((rowOrder.map(estimate.b.rows(in:)) ?? estimate.b).values, scale: bFactor, dtype: dtype)),
      ]
    }
  }

  /// The tensors a merge's output holds, in order (each module's factors supplied once solved,
  /// the rest computed by the writer); how each module's factors become bytes; the layout, the
  /// q/k row-order heads (GGUF) and the architecture they were laid out for.
  static func outputTensors(
    _ merge: Merge, format: AdapterFormat, path: String, dtype: DType?, llamaHeads: LlamaGGUF.Heads?
  ) throws(AdapterError) -> (
    tensors: [OutputTensor], modules: [ModuleTensors], plan: OutputLayout, rowHeads: LlamaGGUF.Heads?,
    architecture: String
  ) {
    let set = merge.set
    let outputType = dtype ?? set.outputDType.dtype
    let plan = OutputLayout(merge)
    let architecture = set.clients.compactMap(\.architecture).first ?? "llama"
    var rowHeads: LlamaGGUF.Heads?
    if format == .gguf {
      let known = if let llamaHeads { llamaHeads } else { try QKRowOrder.heads(from: set.clients) }
      rowHeads = try QKRowOrder.headsForWriting(
        architecture: architecture, modules: set.moduleNames, heads: known, path: path)
    }
    if format.isForeign {
      let (tensors, modules) = try foreignTensors(merge, plan: plan, format: format, dtype: outputType)
      return (tensors, modules, plan, nil, architecture)
    }
    var tensors: [OutputTensor] = []
    var modules: [ModuleTensors] = []
    for (index, module) in set.moduleNames.enumerated() {
      let names = tensorNames(module, kind: plan.kinds[index], format: format)
      let rank = plan.ranks[index]
      let k = plan.shapes[index][1]
      let d = plan.shapes[index][0]
      // GGUF applies alpha / r per tensor; fold what that does not express into B.
      let bFactor = format == .gguf ? Double(rank) / plan.ggufAlpha : 1 / plan.scales[index]
      let rowOrder = LlamaGGUF.rowOrder(for: module, shape: plan.shapes[index], heads: rowHeads, inverse: false)
      modules.append(ModuleTensors(names: names, bFactor: bFactor, rowOrder: rowOrder, dtype: outputType))
      tensors.append(
        OutputTensor(name: names.a, dtype: outputType, shape: [rank, k], source: .supplied(.init(key: names.a))))
      tensors.append(
        OutputTensor(name: names.b, dtype: outputType, shape: [d, rank], source: .supplied(.init(key: names.b))))
    }
    // lora_B.bias: the bias update is linear, so every rule carries it exactly (b = sum w s b_u / s).
    if set.hasBias {
      let modules = set.moduleNames.filter { name in set.modules(named: name).contains { $0?.bias != nil } }
      guard format != .gguf else {
        throw .cannotCarry(
          what: "lora_B.bias of \(modules[0]) (and \(modules.count - 1) more)", format: "llama.cpp GGUF LoRA")
      }
      for (index, module) in set.moduleNames.enumerated() where plan.kinds[index] == .linear {
        let (d, scale) = (plan.shapes[index][0], plan.scales[index])
        tensors.append(
          OutputTensor(
            name: "base_model.model.\(module).lora_B.bias", dtype: outputType, shape: [d],
            source: .compute { buffer in
              write(
                try set.biasUpdate(module) ?? [Double](repeating: 0, count: d), scale: 1 / scale, into: buffer,
                dtype: outputType)
            }))
      }
    }
    for name in set.fullTensorNames { tensors.append(try weightedAverage(name, set: set)) }
    return (tensors, modules, plan, rowHeads, architecture)
  }

  /// An adapter output staged in a transaction: its files laid out (everything but the
  /// modules' factors written), and how each solved module's factors are written into them.
  struct Staged: Sendable {
    let sink: TensorSink
    let modules: [ModuleTensors]

    /// Writes module `index`'s encoded factors.
    func write(_ encoded: [(key: String, bytes: [UInt8])]) throws(AdapterError) {
      try AdapterError.writing { for part in encoded { try sink.write(part.key, bytes: part.bytes) } }
    }
  }

  /// Stages the merge's adapter output at `path` in `transaction` (see ``write(_:format:to:dtype:provenance:llamaHeads:progress:in:)``).
  static func stage(
    _ merge: Merge, format: AdapterFormat, to path: String, dtype: DType?, provenance: Provenance,
    llamaHeads: LlamaGGUF.Heads? = nil, progress: ProgressHandler? = nil, in transaction: OutputTransaction
  ) throws(AdapterError) -> Staged {
    let (tensors, modules, plan, rowHeads, architecture) = try outputTensors(
      merge, format: format, path: path, dtype: dtype, llamaHeads: llamaHeads)
    let set = merge.set
    let metadata = [("format", "pt")] + provenance.metadata
    let sink: TensorSink
    switch format {
    case .peft:
      let config = Array(plan.config(for: set, merge: merge).prettyText.utf8)
      sink = try openPEFT(tensors, metadata: metadata, config: config, to: path, progress: progress, in: transaction)
    case .safetensors:
      // No adapter_config.json beside a bare file: it carries the config in its metadata.
      let config = plan.config(for: set, merge: merge).compactText
      sink = try AdapterError.writing { () throws -> TensorSink in
        try SafeTensorsWriter.open(
          tensors, metadata: metadata + [(AdapterConfig.metadataKey, config)], to: path, progress: progress,
          in: transaction)
      }
    case .kohya, .diffusers, .mlx:
      let (metadata, mlxConfig) = try foreignMetadata(merge, plan: plan, format: format, provenance: provenance)
      sink = try ForeignWriter.open(
        tensors, format: format, metadata: metadata, mlxConfig: mlxConfig, to: path, progress: progress,
        in: transaction)
    case .gguf:
      let kv: [(key: String, value: GGUFValue)] =
        [
          ("general.architecture", .string(architecture)), ("general.type", .string("adapter")),
          ("adapter.type", .string("lora")), ("adapter.lora.alpha", .f32(Float(plan.ggufAlpha))),
        ] + QKRowOrder.metadata(heads: rowHeads) + metadata.dropFirst().map { ($0.key, .string($0.value)) }
      sink = try AdapterError.writing { () throws -> TensorSink in
        try GGUFWriter.open(tensors, metadata: kv, to: path, progress: progress, in: transaction)
      }
    }
    return Staged(sink: sink, modules: modules)
  }

  /// Writes the merge's output to `path`: plans it, solves every module (in parallel, a window
  /// ahead of the writer) and writes each one's factors as it comes.
  /// - Parameters:
  ///   - merge: the planned merge.
  ///   - format: a PEFT folder, a bare safetensors file or a llama.cpp GGUF LoRA.
  ///   - path: the destination, renamed into place when the transaction commits.
  ///   - dtype: the output dtype; nil for the clients' (``ClientSet/outputDType``).
  ///   - provenance: what the output records of its making.
  ///   - llamaHeads: for a llama GGUF, the head counts its q/k `lora_b` rows are ordered by
  ///     (else the clients'; refused when none is known).
  ///   - progress: called with each tensor's byte count once written.
  ///   - transaction: the run's outputs (a dry run's records the files and solves nothing); nil
  ///     for one of its own, committed on success.
  /// - Returns: the merge's report (no modules for a dry run).
  /// - Throws: `AdapterError`: what solving throws, a format that cannot carry the output, a
  ///   failed write.
  @discardableResult
  public static func write(
    _ merge: Merge, format: AdapterFormat, to path: String, dtype: DType?, provenance: Provenance,
    llamaHeads: LlamaGGUF.Heads? = nil, progress: ProgressHandler? = nil, in transaction: OutputTransaction? = nil
  ) throws(AdapterError) -> MergeReport {
    let own = transaction == nil ? OutputTransaction() : nil
    guard let running = transaction ?? own else { preconditionFailure("a transaction is given or made") }
    let staged = try stage(
      merge, format: format, to: path, dtype: dtype, provenance: provenance, llamaHeads: llamaHeads,
      progress: progress, in: running)
    let report = try solve(merge, into: staged)
    try AdapterError.writing { try own?.commit() }
    return report
  }

  /// Solves every module of `merge` (encoding its factors on the worker that solved it) and
  /// writes them into `staged` in module order; nothing for a dry run.
  static func solve(_ merge: Merge, into staged: Staged) throws(AdapterError) -> MergeReport {
    guard !staged.sink.isDryRun else { return MergeReport(method: merge.options.method, modules: []) }
    let modules = staged.modules
    let report = try merge.solve(
      prepare: { index, solved, _ in modules[index].encode(solved.estimate) },
      consume: { _, encoded throws(AdapterError) in try staged.write(encoded) })
    try AdapterError.writing { try staged.sink.finish() }
    return report
  }

  /// The files `write` would write for this merge, with their tensors (none for a config), for
  /// a dry run: nothing is solved or written.
  public static func plannedFiles(
    _ merge: Merge, format: AdapterFormat, to path: String, dtype: DType?, llamaHeads: LlamaGGUF.Heads? = nil
  ) throws(AdapterError) -> [(path: String, tensors: [OutputTensor])] {
    let tensors = try outputTensors(merge, format: format, path: path, dtype: dtype, llamaHeads: llamaHeads).tensors
    if format.isForeign {
      let files = ForeignWriter.files(format, path: path)
      return files.enumerated().map { ($0.element, $0.offset == 0 ? tensors : []) }
    }
    guard format == .peft else { return [(path, tensors)] }
    return [(path + "/" + peftFiles[0], tensors), (path + "/" + peftFiles[1], [])]
  }

  /// Writes a PEFT folder: `adapter_model.safetensors` and `adapter_config.json`. In an
  /// existing folder only these two files are replaced. No tensor may be supplied.
  public static func writePEFT(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)], config: [UInt8], to path: String,
    progress: ProgressHandler? = nil, in transaction: OutputTransaction? = nil
  ) throws(AdapterError) {
    try AdapterError.writing {
      try OutputTransaction.run(in: transaction) { transaction in
        try openPEFT(tensors, metadata: metadata, config: config, to: path, progress: progress, in: transaction)
          .finish()
      }
    }
  }

  /// Stages a PEFT folder as ``writePEFT(_:metadata:config:to:progress:in:)`` does, and returns
  /// the sink of its supplied tensors.
  static func openPEFT(
    _ tensors: [OutputTensor], metadata: [(key: String, value: String)], config: [UInt8], to path: String,
    progress: ProgressHandler?, in transaction: OutputTransaction
  ) throws(AdapterError) -> TensorSink {
    try AdapterError.writing { () throws -> TensorSink in
      var sink = TensorSink?.none
      try transaction.folder(path) { folder in
        sink = try SafeTensorsWriter.open(
          tensors, metadata: metadata, named: peftFiles[0], in: folder, progress: progress)
        try folder.file(peftFiles[1], contents: config)
      }
      guard let sink else { preconditionFailure("the folder body runs in every transaction") }
      return sink
    }
  }

  /// Output tensor names of a module's factors.
  static func tensorNames(_ module: String, kind: LoRAModule.Kind, format: AdapterFormat) -> (a: String, b: String) {
    if format == .gguf, let base = ModuleName.toGGUF(module) { return (base + ".lora_a", base + ".lora_b") }
    if kind == .embedding {
      return ("base_model.model.\(module).lora_embedding_A", "base_model.model.\(module).lora_embedding_B")
    }
    return ("base_model.model.\(module).lora_A.weight", "base_model.model.\(module).lora_B.weight")
  }

  static func write(_ values: [Double], scale: Double, into buffer: UnsafeMutableRawBufferPointer, dtype: DType) {
    let floats = values.map { Float($0 * scale) }
    FloatConversion.narrow(floats, to: dtype, into: buffer)
  }

  /// `values * scale` rounded once to `dtype`, as the bytes of a tensor.
  static func bytes(_ values: [Double], scale: Double, dtype: DType) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(dtype.byteCount(elements: UInt64(values.count)) ?? 0))
    out.withUnsafeMutableBytes { write(values, scale: scale, into: $0, dtype: dtype) }
    return out
  }

  /// A `modules_to_save` tensor as the weighted average of the clients' copies, in the first
  /// copy's dtype (float copies only).
  static func weightedAverage(_ name: String, set: ClientSet) throws(AdapterError) -> OutputTensor {
    let copies = set.clients.compactMap { client in client.fullTensors.first { $0.name == name } }
    guard let first = copies.first else {
      throw .notAdapted(module: name)
    }
    guard let unsupported = copies.first(where: { !$0.dtype.isPlainFloat }) else {
      // Rows at a time: an lm_head or embedding copy is hundreds of MB per client.
      let weights = set.weights
      let rowElements = first.elementCount / max(first.shape.first ?? 1, 1)
      return OutputTensor(
        name: name, dtype: first.dtype, shape: first.shape,
        source: .rows {
          { rows, buffer in
            let count = rows.count * rowElements
            var sum = [Double](repeating: 0, count: count)
            var values = [Float](repeating: 0, count: count)
            for (copy, weight) in zip(copies, weights) {
              let bytes = copy.dtype.block.bytes * rowElements
              try copy.withBytes((rows.lowerBound * bytes)..<(rows.upperBound * bytes)) { raw in
                values.withUnsafeMutableBufferPointer { Dequantize.widen(raw, dtype: copy.dtype, into: $0) }
              }
              for i in 0..<count { sum[i] += weight * Double(values[i]) }
            }
            write(sum, scale: 1, into: buffer, dtype: first.dtype)
          }
        })
    }
    throw .checkpoint(
      .unsupportedDType(
        path: unsupported.file.path, tensor: name, dtype: unsupported.dtype.rawValue,
        operation: "average (modules_to_save)"))
  }
}
