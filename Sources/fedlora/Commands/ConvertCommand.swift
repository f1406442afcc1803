import Adapters
import ArgumentParser
import Checkpoints

struct ConvertCommand: PipelineCommand {
  static let schema = "fedlora.convert/1"

  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract:
      "Convert a checkpoint between safetensors (single or sharded) and GGUF, or an adapter between PEFT, GGUF, kohya, diffusers and MLX-LM.",
    discussion: """
      The output format follows OUT: a name ending in .gguf or .safetensors, or else a folder \
      (sharded safetensors with model.safetensors.index.json, --shard-size default 5GB; for an \
      adapter, a PEFT folder; --format kohya, diffusers or mlx writes an adapter in that tool's own \
      layout, each module's update exactly: factors copied, the scale carried as kohya's alpha, \
      diffusers' lora_alpha and alpha_pattern, or MLX-LM's one scale with other modules' ratio \
      folded into lora_b, as the output's fedlora.scale_folded metadata says). Tensor names \
      are kept, except for llama-family models (a config.json beside IN): these get llama.cpp's \
      names, q/k row order and hyper-parameters, and the vocabulary of the tokenizer files beside \
      IN (tokenizer.model or a byte-level BPE tokenizer.json), as llama.cpp's converter writes \
      them; GGUF -> safetensors undoes the names and row order. Without --dtype every tensor keeps \
      its dtype and bytes; with --dtype, float tensors are rounded once to it \
      (round-to-nearest-even). The output is staged as a hidden temporary and renamed into \
      place, so OUT is never left half-written; in an existing folder only the files of this \
      output are replaced. An OUT that is IN or lies inside IN's folder is refused.
      """
  )

  @Argument(
    help:
      "Input checkpoint or adapter: a file (safetensors, GGUF, PyTorch .bin), a sharded folder or its index.json, a PEFT folder, a cached Hugging Face id.",
    completion: .file()
  )
  var input: String

  @Argument(
    help: "Output: FILE.safetensors, FILE.gguf, or a folder (sharded safetensors; a PEFT folder for an adapter).",
    completion: .file())
  var output: String

  @Option(help: "Output dtype of float tensors: f32, f16 or bf16; q8_0 quantises 2-D weights for GGUF as ggml does.")
  var dtype: ConvertDType?

  @Option(
    help:
      "Adapter output format: peft (a folder), safetensors, gguf, kohya (a .safetensors file), diffusers (a folder or .safetensors) or mlx (a folder). Default: by OUT's extension, else peft."
  )
  var format: AdapterFormat?

  @Option(help: "With a folder OUT: at most this much tensor data per shard (e.g. 5GB, 500MiB; default 5GB).")
  var shardSize: String?

  @Flag(help: "Leave out tensors the output format cannot hold instead of failing.")
  var skipUnsupported = false

  @Flag(help: "Keep a llama-family model's tensor names as they are (no renaming between Hugging Face and llama.cpp).")
  var keepNames = false

  @Flag(
    help:
      "Check everything and print what would be written (files, tensors, dtypes, bytes, what they replace), writing nothing."
  )
  var dryRun = false

  @OptionGroup var llama: LlamaOptions

  @OptionGroup var outputOptions: OutputOptions

  enum Kind { case gguf, safetensors, folder }

  var outputPath: String { trimmingTrailingSlashes(output) }

  var kind: Kind {
    outputPath.hasSuffix(".gguf") ? .gguf : outputPath.hasSuffix(".safetensors") ? .safetensors : .folder
  }

  func validate() throws {
    if dtype == .q8_0, kind != .gguf { throw ValidationError("--dtype q8_0 needs a .gguf output") }
    if let format {
      let fits =
        switch format {
        case .peft, .mlx: kind == .folder
        case .safetensors, .kohya: kind == .safetensors
        case .gguf: kind == .gguf
        case .diffusers: kind != .gguf
        }
      guard fits else {
        let wants =
          switch format {
          case .peft, .mlx: "a folder OUT"
          case .safetensors, .kohya: "an OUT ending in .safetensors"
          case .gguf: "an OUT ending in .gguf"
          case .diffusers: "a folder OUT or one ending in .safetensors"
          }
        throw ValidationError("--format \(format.rawValue) writes \(wants); OUT is '\(outputPath)'")
      }
    }
    if let shardSize {
      guard kind == .folder else {
        throw ValidationError(
          "--shard-size applies to a sharded output: OUT a folder, not a .\(kind == .gguf ? "gguf" : "safetensors") file"
        )
      }
      guard NumberFormat.parseSize(shardSize) != nil else {
        throw ValidationError("--shard-size '\(shardSize)' is not a size such as 5GB or 4096")
      }
    }
  }

  func execute() throws {
    let outputs: [PathConflicts.Output] = [
      kind == .folder
        ? .folder(
          outputPath,
          writes: {
            ShardedIndex.isOutputFile($0) || AdapterWriter.peftFiles.contains($0)
              || ForeignWriter.mlxFiles.contains($0) || $0 == ForeignWriter.diffusersFile
          })
        : .file(outputPath)
    ]
    try PathConflicts.check(outputs, inputs: [input] + [llama.baseConfig].compactMap { $0 })
    if try convertAdapter() { return }
    if let format {
      throw ValidationError(
        "--format \(format.rawValue) chooses an adapter's format; \(input) is not an adapter (OUT's extension decides)")
    }
    if llama.baseConfig != nil {
      throw ValidationError(LlamaOptions.unused + "; \(input) is not an adapter")
    }
    let checkpoint = try Checkpoint.open(input)
    var plan = try CheckpointConversion.plan(
      checkpoint, to: kind == .gguf ? .gguf : .safetensors, dtype: dtype?.dtype, skipUnsupported: skipUnsupported)
    let renamed = try renameLlama(plan, checkpoint: checkpoint)
    if keepNames, renamed == nil {
      throw ValidationError(
        "--keep-names: \(input) is not a llama-family model converted across formats, so its names are kept anyway")
    }
    var metadataOverride: [(key: String, value: GGUFValue)]?
    if !keepNames, let renamed { (plan.tensors, metadataOverride) = renamed }
    for skipped in plan.skipped {
      Session.warn("left out '\(skipped.tensor)' (\(skipped.dtype.rawValue)): the output format cannot hold it")
    }
    // A dry run is this run minus the writing: the same writers and checks, recording what they would write.
    let transaction = OutputTransaction(dryRun: dryRun)
    let bytes = plan.tensors.reduce(0) { $0 + $1.byteCount }
    let progress = Progress(total: bytes, enabled: Session.showsProgress && !dryRun)
    switch kind {
    case .gguf:
      try GGUFWriter.write(
        plan.tensors, metadata: metadataOverride ?? ggufMetadata(checkpoint),
        alignment: checkpoint.gguf?.alignment ?? GGUFFile.defaultAlignment, to: outputPath, progress: progress.handler,
        in: transaction)
    case .safetensors:
      try SafeTensorsWriter.write(
        plan.tensors, metadata: safetensorsMetadata(checkpoint), to: outputPath, progress: progress.handler,
        in: transaction)
    case .folder:
      let shardSize = shardSize.flatMap(NumberFormat.parseSize) ?? SafeTensorsWriter.defaultShardSize
      try SafeTensorsWriter.writeSharded(
        plan.tensors, metadata: safetensorsMetadata(checkpoint), shardSize: shardSize, to: outputPath,
        progress: progress.handler, in: transaction)
    }
    if dryRun { return DryRunView.show(transaction.planned.map { ($0.path, $0.tensors) }, layers: []) }
    try transaction.commit()
    progress.finish()
    finish(
      plan.tensors, format: kind == .gguf ? "gguf" : kind == .safetensors ? "safetensors" : "sharded-safetensors",
      detail: "\(plan.tensors.count) tensors, \(NumberFormat.bytes(bytes))")
  }

  /// The result: a line on stdout, or the document listing what was written.
  private func finish(_ tensors: [OutputTensor], format: String, detail: String) {
    Session.result("wrote \(outputPath): \(detail)")
    var dtypes: [(key: String, value: JSON)] = []
    for tensor in tensors where !dtypes.contains(where: { $0.key == tensor.dtype.rawValue }) {
      dtypes.append((tensor.dtype.rawValue, JSON(tensors.filter { $0.dtype == tensor.dtype }.count)))
    }
    let files =
      kind == .folder
      ? Checkpoint.listDirectory(outputPath).filter {
        ShardedIndex.isOutputFile($0) || AdapterWriter.peftFiles.contains($0) || ForeignWriter.mlxFiles.contains($0)
          || $0 == ForeignWriter.diffusersFile
      } : [outputPath]
    Session.finish([
      ("input", .string(input)), ("output", .string(outputPath)), ("format", .string(format)),
      ("files", .array(files.map { .string($0) })), ("tensors", JSON(tensors.count)),
      ("bytes", JSON(tensors.reduce(0) { $0 + $1.byteCount })), ("dtypes", .object(dtypes)),
    ])
  }

  /// llama-family checkpoints: Hugging Face names and q/k row order <-> llama.cpp's, with the
  /// hyper-parameters of `config.json` and the vocabulary of the tokenizer files as GGUF
  /// metadata; nil for other checkpoints (and conversions within one format).
  private func renameLlama(_ plan: CheckpointConversion.Plan, checkpoint: Checkpoint) throws
    -> ([OutputTensor], [(key: String, value: GGUFValue)]?)?
  {
    if kind == .gguf, checkpoint.gguf == nil {
      guard let export = try LlamaGGUF.export(plan.tensors, folder: checkpoint.folder) else { return nil }
      if !keepNames { export.report() }
      return (export.tensors, export.metadata)
    }
    if kind != .gguf, let gguf = checkpoint.gguf, gguf["general.architecture"]?.stringValue == "llama",
      let heads = try LlamaGGUF.heads(gguf: gguf)
    {
      return (LlamaGGUF.toHF(plan.tensors, heads: heads), nil)
    }
    return nil
  }

  /// PEFT <-> llama.cpp GGUF LoRA; false when IN is not an adapter.
  private func convertAdapter() throws -> Bool {
    let heads = try llama.heads()
    guard let loaded = try Adapter.loadIfAdapter(input, llamaHeads: heads, model: llama.model()) else { return false }
    let adapter = try QKRowOrder.resolve([loaded], heads: heads)[0]
    if keepNames {
      throw ValidationError("--keep-names applies to model checkpoints; an adapter's names follow its format")
    }
    if shardSize != nil { throw ValidationError("--shard-size applies to model checkpoints; an adapter is one file") }
    if dtype == .q8_0 { throw ValidationError("--dtype q8_0 quantises model weights; adapters stay f32, f16 or bf16") }
    if skipUnsupported {
      throw ValidationError(
        "--skip-unsupported leaves out model tensors a format cannot hold; an adapter's factors are all carried")
    }
    if llama.baseConfig != nil, !LlamaOptions.uses([adapter], output: kind == .gguf ? .gguf : format) {
      throw ValidationError(LlamaOptions.unused + "; neither \(input) nor \(outputPath) is one")
    }
    let dtype = self.dtype?.floatType
    if let format, format.isForeign {
      let result = try AdapterConversion.toForeign(adapter, format: format, dtype: dtype)
      if !result.foldedScales.isEmpty {
        Session.warn(
          "MLX-LM has one scale per adapter: the scales of \(result.foldedScales.count) modules are folded into lora_b (fedlora.scale_folded)"
        )
      }
      let transaction = OutputTransaction(dryRun: dryRun)
      try ForeignWriter.write(result, format: format, to: outputPath, in: transaction)
      if dryRun {
        DryRunView.show(transaction.planned.map { ($0.path, $0.tensors) }, layers: [])
        return true
      }
      try transaction.commit()
      finish(result.tensors, format: format.rawValue, detail: "\(adapter.modules.count) LoRA modules")
      return true
    }
    let result =
      kind == .gguf
      ? try AdapterConversion.toGGUF(adapter, dtype: dtype, heads: heads)
      : AdapterConversion.toPEFT(adapter, dtype: dtype)
    let config = (result.peftConfig ?? .object([]))
    if kind == .gguf, !result.foldedScales.isEmpty {
      Session.warn(
        "GGUF has one alpha per file: the scales of \(result.foldedScales.count) modules (rsLoRA or patterns) are folded into lora_b"
      )
    }
    let transaction = OutputTransaction(dryRun: dryRun)
    switch kind {
    case .gguf:
      try GGUFWriter.write(result.tensors, metadata: result.ggufMetadata, to: outputPath, in: transaction)
    case .safetensors:
      // No adapter_config.json beside a bare file: it carries the config in its metadata.
      try SafeTensorsWriter.write(
        result.tensors, metadata: [("format", "pt"), (AdapterConfig.metadataKey, config.compactText)], to: outputPath,
        in: transaction)
    case .folder:
      try AdapterWriter.writePEFT(
        result.tensors, metadata: [("format", "pt")], config: Array(config.prettyText.utf8), to: outputPath,
        in: transaction)
    }
    if dryRun {
      DryRunView.show(transaction.planned.map { ($0.path, $0.tensors) }, layers: [])
      return true
    }
    try transaction.commit()
    finish(
      result.tensors, format: kind == .gguf ? "gguf-lora" : kind == .safetensors ? "safetensors" : "peft",
      detail: "\(adapter.modules.count) LoRA modules")
    return true
  }

  /// GGUF key/values of the input kept; safetensors metadata carried as `safetensors.<key>` strings.
  private func ggufMetadata(_ checkpoint: Checkpoint) -> [(key: String, value: GGUFValue)] {
    if let gguf = checkpoint.gguf { return gguf.metadata }
    return checkpoint.metadata.map { ("safetensors.\($0.key)", .string($0.value)) }
  }

  /// safetensors metadata kept; from GGUF, the `safetensors.<key>` strings an earlier conversion carried.
  private func safetensorsMetadata(_ checkpoint: Checkpoint) -> [(key: String, value: String)] {
    guard let gguf = checkpoint.gguf else { return checkpoint.metadata }
    return gguf.metadata.compactMap { entry in
      guard entry.key.hasPrefix("safetensors."), let value = entry.value.stringValue else { return nil }
      return (String(entry.key.dropFirst("safetensors.".count)), value)
    }
  }
}
