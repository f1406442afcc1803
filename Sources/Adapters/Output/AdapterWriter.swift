import Checkpoints

/// Writes a merged adapter in any adapter format: a PEFT folder, a bare safetensors file (its config in
/// the metadata), a llama.cpp GGUF LoRA, or kohya-ss, diffusers and MLX-LM layouts; and records the
/// merge's ``Provenance`` in it.
///
/// For a merge into base weights use ``MergeWriter``, which calls this for adapters and picks the
/// format from the path as the command line does.
public enum AdapterWriter {
  /// The files a PEFT folder output consists of (all that writing one replaces in a folder).
  public static let peftFiles = ["adapter_model.safetensors", "adapter_config.json"]

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
  /// - Complexity: as ``Merge/solve(window:consume:)``, plus O(output bytes) written: each module's
  ///   factors are encoded to the output dtype on the worker that solved it, and written in module
  ///   order.
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

  /// The files ``write(_:format:to:dtype:provenance:llamaHeads:progress:in:)`` would write for this
  /// merge, with their tensors (none for a config), for a dry run: nothing is solved or written.
  /// - Parameters:
  ///   - merge: the planned merge (it may be planned only, ``MergeOptions/planOnly``).
  ///   - format: the adapter format.
  ///   - path: the destination.
  ///   - dtype: the output dtype; nil for the clients'.
  ///   - llamaHeads: for a llama GGUF, the head counts its q/k rows are ordered by.
  /// - Returns: each file's path and the tensors it would hold.
  /// - Throws: ``AdapterError``: `cannot-carry` for what the format cannot hold, `unknown-row-order`
  ///   for a llama GGUF without head counts.
  /// - Complexity: O(modules); nothing is read.
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

  /// Writes a PEFT folder: `adapter_model.safetensors` and `adapter_config.json` (a converted
  /// adapter's, ``AdapterConversion/toPEFT(_:dtype:)``). In an existing folder only these two files are
  /// replaced. No tensor may be supplied.
  /// - Parameters:
  ///   - tensors: the adapter's tensors.
  ///   - metadata: the safetensors `__metadata__`.
  ///   - config: the bytes of `adapter_config.json`.
  ///   - path: the destination folder.
  ///   - progress: called with each tensor's byte count once written.
  ///   - transaction: the run's outputs, or nil for one of its own, committed on success.
  /// - Throws: ``AdapterError/checkpoint(_:)`` for a failed write (`write-failed`,
  ///   `unsupported-dtype`).
  /// - Complexity: O(total bytes), as `SafeTensorsWriter`.
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
}
