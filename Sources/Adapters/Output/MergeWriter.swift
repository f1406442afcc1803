import Checkpoints

/// Where a merge's result goes and in what form, with the CLI's defaults: an adapter's format
/// from the output's extension (`.gguf`, `.safetensors`, else a PEFT folder); with a base, a
/// merged checkpoint of the same choice (`.gguf`, `.safetensors`, else a sharded folder of
/// `SafeTensorsWriter.defaultShardSize` shards), and for `fedex` its FedAvg adapter beside it.
public struct MergeDestination {
  /// The output path (a file, or a folder for a PEFT adapter or a sharded checkpoint).
  public var path: String
  /// An adapter's format; nil to take it from the path's extension.
  public var format: AdapterFormat?
  /// The base checkpoint to fold the aggregate into; nil for an adapter.
  public var base: Checkpoint?
  /// Where `fedex` writes its FedAvg adapter; nil for `path` + `.adapter`.
  public var adapterPath: String?
  /// The output dtype: nil for the clients' (adapters) or each base tensor's (merged bases).
  public var dtype: DType?
  /// Tensor data per shard of a sharded checkpoint; nil for `SafeTensorsWriter.defaultShardSize`.
  public var shardSize: Int?
  /// The head counts that order a llama GGUF LoRA's q/k rows (else the clients').
  public var llamaHeads: LlamaGGUF.Heads?

  /// A destination at `path`, everything else by default.
  /// - Parameter path: the output file or folder.
  public init(path: String) { self.path = path }

  /// The adapter format a path's extension names.
  /// - Parameter path: an output path.
  /// - Returns: `.gguf` or `.safetensors`; nil for other paths (a folder).
  public static func adapterFormat(ofPath path: String) -> AdapterFormat? {
    path.hasSuffix(".gguf") ? .gguf : path.hasSuffix(".safetensors") ? .safetensors : nil
  }

  /// The adapter format written: the one given, else the path's, else a PEFT folder.
  public var adapterFormat: AdapterFormat { format ?? Self.adapterFormat(ofPath: path) ?? .peft }

  /// The format the clients' own tools load, when they share one fedlora writes: kohya (all
  /// kohya), diffusers (all diffusers, or kohya and diffusers clients together: diffusers'
  /// `load_lora_weights` reads it, and it names every module either kind has),
  /// MLX-LM; nil for PEFT, bare safetensors, GGUF and torchtune clients (PEFT's rules).
  /// - Parameter clients: the loaded clients.
  /// - Returns: the clients' common format, or nil.
  public static func clientsFormat(_ clients: [Adapter]) -> AdapterFormat? {
    let formats = Set(clients.map(\.sourceFormat))
    if formats == [.kohya] { return .kohya }
    if formats == [.diffusers] || formats == [.kohya, .diffusers] { return .diffusers }
    if formats == [.mlx] { return .mlx }
    return nil
  }

  /// Where an adapter output's format came from.
  public enum FormatSource: String, Sendable {
    /// `--format`.
    case given
    /// The clients' own format (``clientsFormat(_:)``).
    case clients
    /// OUT's extension (`.gguf`, `.safetensors`).
    case `extension`
    /// A PEFT folder, OUT having no extension.
    case `default`
  }

  /// The adapter format of a merge of `clients` to `path`: the one given, else `.gguf` by the
  /// extension, else the clients' own (``clientsFormat(_:)``) where OUT can hold it (kohya: a
  /// `.safetensors` file; MLX: a folder), else by the extension, else a PEFT folder. `note`
  /// says why, when the choice is not the plain one (never chosen silently).
  /// - Parameters:
  ///   - given: the format asked for (`--format`), or nil.
  ///   - clients: the loaded clients.
  ///   - path: the output path.
  /// - Returns: the format, where it came from, and a note for the user when the choice is not the
  ///   plain one.
  public static func chooseFormat(given: AdapterFormat?, clients: [Adapter], path: String) -> (
    format: AdapterFormat, source: FormatSource, note: String?
  ) {
    if let given { return (given, .given, nil) }
    let named = adapterFormat(ofPath: path)
    if named == .gguf { return (.gguf, .extension, nil) }
    switch clientsFormat(clients) {
    case .kohya? where named == .safetensors: return (.kohya, .clients, nil)
    case .kohya?:
      return (
        .peft, .default,
        "the clients are kohya-ss LoRAs, which are one .safetensors file; OUT is a folder, so a PEFT folder is written (give OUT.safetensors or --format for another)"
      )
    case .diffusers?:
      let mixed = Set(clients.map(\.sourceFormat)).count > 1
      return (
        .diffusers, .clients,
        mixed
          ? "kohya and diffusers clients: written as diffusers (pytorch_lora_weights.safetensors), which diffusers' load_lora_weights loads; --format kohya for ComfyUI and AUTOMATIC1111"
          : nil
      )
    case .mlx? where named == .safetensors:
      return (
        .safetensors, .extension,
        "the clients are MLX-LM adapters, which are folders; OUT names a .safetensors file, so a bare safetensors adapter is written (give a folder for MLX-LM's)"
      )
    case .mlx?: return (.mlx, .clients, nil)
    default: return (named ?? .peft, named == nil ? .default : .extension, nil)
    }
  }

  /// Where `fedex`'s FedAvg adapter goes.
  public var fedexAdapterPath: String { adapterPath ?? path + ".adapter" }

  /// Whether a merged checkpoint is a sharded folder (a base, and no file extension).
  public var isSharded: Bool { base != nil && Self.adapterFormat(ofPath: path) == nil }
}

/// A merge's output planned: the files and tensors it writes, and what the CLI tells its user
/// before writing (requantised tensors, what a llama.cpp export left out); then ``write(progress:in:)``
/// solves the merge and writes it, one way: the scheduler solves modules, the writers write.
public final class MergeWriter {
  /// The planned merge.
  public let merge: Merge
  /// Where it goes.
  public let destination: MergeDestination
  /// What its outputs record of their making.
  public let provenance: AdapterWriter.Provenance
  /// Quantised base tensors written in a float dtype after the merge.
  public let requantised: [String]
  /// The llama.cpp export of a safetensors base written as GGUF (its metadata, what it left out).
  public let export: LlamaGGUF.Export?
  /// The merged base's tensor bytes (0 for an adapter): what a progress display counts to.
  public let totalBytes: Int
  private let basePlan: BaseMerge.Plan?

  /// Plans the output of `merge` at `destination`.
  /// - Parameters:
  ///   - merge: the planned merge.
  ///   - destination: where it goes and in what form.
  ///   - provenance: what the outputs record of their making.
  /// - Throws: `AdapterError` for a base that does not hold the adapted weights, a quantised
  ///   tensor that cannot be merged into, a llama config that cannot be exported.
  /// - Complexity: O(base tensors + modules) to lay out a merged base (no tensor data read); a llama
  ///   export to GGUF also reads `config.json` and the tokenizer files.
  public init(_ merge: Merge, to destination: MergeDestination, provenance: AdapterWriter.Provenance)
    throws(AdapterError)
  {
    self.merge = merge
    self.destination = destination
    self.provenance = provenance
    guard let base = destination.base else {
      (requantised, export, totalBytes, basePlan) = ([], nil, 0, nil)
      return
    }
    let plan = try BaseMerge.plan(base: base, merge: merge, dtype: destination.dtype)
    basePlan = plan
    requantised = plan.requantised
    totalBytes = plan.tensors.reduce(0) { $0 + $1.byteCount }
    // A safetensors llama base becomes a GGUF llama.cpp runs: its names, row order, hyper-parameters and vocabulary.
    export =
      destination.path.hasSuffix(".gguf") && base.gguf == nil
      ? try AdapterError.wrap { () throws(CheckpointError) in try LlamaGGUF.export(plan.tensors, folder: base.folder) }
      : nil
  }

  /// Solves the merge and writes its output(s) in `transaction` (a dry run's records the files
  /// and solves nothing).
  /// - Parameters:
  ///   - progress: called with each base tensor's byte count once written.
  ///   - transaction: the run's outputs; commit it afterwards for the files to appear.
  /// - Returns: the merge's report (no modules for a dry run).
  /// - Throws: `AdapterError`: what solving throws, or a failed write.
  /// - Complexity: as ``Merge/solve(window:consume:)`` for the modules, plus O(base bytes): every base
  ///   tensor is read once and written once (adapted ones as `W0 + left @ right` a row slice at a time,
  ///   one SGEMM per slice), memory bounded by threads × a slice.
  public func write(progress: ProgressHandler? = nil, in transaction: OutputTransaction) throws(AdapterError)
    -> MergeReport
  {
    guard let base = destination.base, let plan = basePlan else {
      return try AdapterWriter.write(
        merge, format: destination.adapterFormat, to: destination.path, dtype: destination.dtype,
        provenance: provenance, llamaHeads: destination.llamaHeads, in: transaction)
    }
    let sink = try stageBase(base, plan: plan, progress: progress, in: transaction)
    let adapter =
      type(of: merge.method).writes == .baseAndAdapter
      ? try AdapterWriter.stage(
        merge, format: .peft, to: destination.fedexAdapterPath, dtype: destination.dtype, provenance: provenance,
        in: transaction) : nil
    guard !sink.isDryRun else { return MergeReport(method: merge.options.method, modules: []) }
    let method = merge.method
    let folds = plan.folds
    // Each module solved once: its base rows (and fedex's adapter factors) from the one solve.
    let report = try merge.solve(
      factorsAlways: true,
      prepare: { index, solved, factors in
        guard let fold = folds[index], let factors else { preconditionFailure("module \(index): no fold or factors") }
        return (
          key: fold.key, rows: fold.rows(method.baseUpdate(solved.estimate, factors: factors)),
          adapter: adapter?.modules[index].encode(solved.estimate)
        )
      },
      consume: { _, prepared throws(AdapterError) in
        try AdapterError.writing { try sink.write(prepared.key, rows: prepared.rows) }
        if let adapter, let encoded = prepared.adapter { try adapter.write(encoded) }
      })
    try AdapterError.writing {
      try sink.finish()
      try adapter?.sink.finish()
    }
    return report
  }

  /// Stages the merged checkpoint in the destination's layout.
  private func stageBase(
    _ base: Checkpoint, plan: BaseMerge.Plan, progress: ProgressHandler?, in transaction: OutputTransaction
  ) throws(AdapterError) -> TensorSink {
    let output = destination.path
    let metadata = base.metadata.filter { !$0.key.hasPrefix("fedlora.") } + provenance.metadata
    return try AdapterError.writing { () throws -> TensorSink in
      if output.hasSuffix(".gguf") {
        let kv = base.gguf?.metadata ?? export?.metadata ?? [("general.architecture", .string("llama"))]
        return try GGUFWriter.open(
          export?.tensors ?? plan.tensors,
          metadata: kv
            + metadata.map { ($0.key, .string($0.value)) }.filter { entry in !kv.contains { $0.key == entry.key } },
          alignment: base.gguf?.alignment ?? GGUFFile.defaultAlignment, to: output, progress: progress,
          in: transaction)
      }
      if output.hasSuffix(".safetensors") {
        return try SafeTensorsWriter.open(
          plan.tensors, metadata: metadata, to: output, progress: progress, in: transaction)
      }
      return try SafeTensorsWriter.openSharded(
        plan.tensors, metadata: metadata, shardSize: destination.shardSize ?? SafeTensorsWriter.defaultShardSize,
        to: output, extraFiles: try base.companionFiles(), progress: progress, in: transaction)
    }
  }
}
