import Adapters
import ArgumentParser
import Checkpoints

struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert a checkpoint between safetensors (single or sharded) and GGUF.",
    discussion: """
      The output format follows OUT: a name ending in .gguf or .safetensors, or a folder \
      (sharded safetensors with model.safetensors.index.json; give --shard-size). Tensor names \
      are kept, except for llama-family models (a config.json beside IN): these get llama.cpp's \
      names, q/k row order and hyper-parameters, and the vocabulary of the tokenizer files beside \
      IN (tokenizer.model or a byte-level BPE tokenizer.json), as llama.cpp's converter writes \
      them; GGUF -> safetensors undoes the names and row order. Without --dtype every tensor keeps \
      its dtype and bytes; with --dtype, float tensors are rounded once to it \
      (round-to-nearest-even). The output is written to a temporary file and renamed into place, \
      so OUT is never left half-written.
      """
  )

  @Argument(help: "Input checkpoint: a file, a sharded folder or its index.json.", completion: .file())
  var input: String

  @Argument(help: "Output: FILE.safetensors, FILE.gguf, or a folder for sharded safetensors.", completion: .file())
  var output: String

  @Option(help: "Output dtype of float tensors: f32, f16 or bf16; q8_0 quantises 2-D weights for GGUF as ggml does.")
  var dtype: ConvertDType?

  @Option(help: "Write sharded safetensors with at most this much tensor data per shard (e.g. 5GB, 500MiB).")
  var shardSize: String?

  @Flag(help: "Leave out tensors the output format cannot hold instead of failing.")
  var skipUnsupported = false

  @Flag(help: "Keep tensor names as they are (no llama-family renaming between Hugging Face and llama.cpp).")
  var keepNames = false

  @OptionGroup var llama: LlamaOptions

  @Flag(help: "No progress display.")
  var quiet = false

  func validate() throws {
    if dtype == .q8_0, !output.hasSuffix(".gguf") { throw ValidationError("--dtype q8_0 needs a .gguf output") }
    if let shardSize, Format.parseSize(shardSize) == nil { throw ValidationError("--shard-size '\(shardSize)' is not a size such as 5GB or 4096") }
    if output.hasSuffix(".gguf"), shardSize != nil { throw ValidationError("--shard-size applies to safetensors output only") }
  }

  func run() throws {
    do {
      if try convertAdapter() { return }
      let checkpoint = try Checkpoint.open(input)
      let toGGUF = output.hasSuffix(".gguf")
      var plan = try CheckpointConversion.plan(checkpoint, to: toGGUF ? .gguf : .safetensors, dtype: dtype?.dtype, skipUnsupported: skipUnsupported)
      var metadataOverride: [(key: String, value: GGUFValue)]?
      if !keepNames { (plan.tensors, metadataOverride) = try renameLlama(plan, checkpoint: checkpoint, toGGUF: toGGUF) }
      for skipped in plan.skipped { Terminal.warn("left out '\(skipped.tensor)' (\(skipped.dtype.rawValue)): the output format cannot hold it") }
      let progress = Progress(total: plan.tensors.reduce(0) { $0 + $1.byteCount }, enabled: !quiet)
      if toGGUF {
        try GGUFWriter.write(plan.tensors, metadata: metadataOverride ?? ggufMetadata(checkpoint), alignment: checkpoint.gguf?.alignment ?? GGUFFile.defaultAlignment, to: output, progress: progress.handler)
      } else if let shardSize = shardSize.flatMap(Format.parseSize) {
        try SafeTensorsWriter.writeSharded(plan.tensors, metadata: safetensorsMetadata(checkpoint), shardSize: shardSize, to: output, progress: progress.handler)
      } else {
        guard output.hasSuffix(".safetensors") else {
          throw ValidationError("OUT must end in .safetensors or .gguf, or be a folder with --shard-size")
        }
        try SafeTensorsWriter.write(plan.tensors, metadata: safetensorsMetadata(checkpoint), to: output, progress: progress.handler)
      }
      progress.finish()
      Terminal.err("wrote \(output): \(plan.tensors.count) tensors, \(Format.bytes(plan.tensors.reduce(0) { $0 + $1.byteCount }))")
    } catch let error as ValidationError {
      throw error
    } catch {
      throw fail(error, json: false)
    }
  }

  /// llama-family checkpoints: Hugging Face names and q/k row order <-> llama.cpp's, with the
  /// hyper-parameters of `config.json` and the vocabulary of the tokenizer files as GGUF
  /// metadata. Other checkpoints pass unchanged.
  private func renameLlama(_ plan: CheckpointConversion.Plan, checkpoint: Checkpoint, toGGUF: Bool) throws
    -> ([OutputTensor], [(key: String, value: GGUFValue)]?)
  {
    if toGGUF, checkpoint.gguf == nil {
      guard let export = try LlamaGGUF.export(plan.tensors, folder: checkpoint.folder) else { return (plan.tensors, nil) }
      export.report()
      return (export.tensors, export.metadata)
    }
    if !toGGUF, let gguf = checkpoint.gguf, gguf["general.architecture"]?.stringValue == "llama", let heads = LlamaGGUF.heads(gguf: gguf) {
      return (LlamaGGUF.toHF(plan.tensors, heads: heads), nil)
    }
    return (plan.tensors, nil)
  }

  /// PEFT <-> llama.cpp GGUF LoRA; false when IN is not an adapter.
  private func convertAdapter() throws -> Bool {
    let heads = try llama.heads()
    guard let adapter = try Adapter.loadIfAdapter(input, llamaHeads: heads) else { return false }
    let dtype = self.dtype?.floatType
    if output.hasSuffix(".gguf") {
      let result = try AdapterConversion.toGGUF(adapter, dtype: dtype, heads: heads)
      if !result.foldedScales.isEmpty {
        Terminal.warn("GGUF has one alpha per file: the scales of \(result.foldedScales.count) modules (rsLoRA or patterns) are folded into lora_b")
      }
      try GGUFWriter.write(result.tensors, metadata: result.ggufMetadata, to: output)
    } else {
      let result = AdapterConversion.toPEFT(adapter, dtype: dtype)
      let config = Array((result.peftConfig ?? .object([])).prettyText.utf8)
      try AtomicWrite.directory(output) { folder in
        try SafeTensorsWriter.write(result.tensors, metadata: [("format", "pt")], to: folder + "/adapter_model.safetensors")
        try OutputFile(creating: folder + "/adapter_config.json").write(config, at: 0)
      }
    }
    Terminal.err("wrote \(output): \(adapter.modules.count) LoRA modules")
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

/// What `convert --dtype` accepts: a float dtype, or Q8_0 for GGUF weights.
enum ConvertDType: String, ExpressibleByArgument, CaseIterable {
  case f32, f16, bf16, q8_0

  var dtype: DType { OutputDType(rawValue: rawValue)?.dtype ?? .q8_0 }

  /// The dtype of float adapter factors; nil for q8_0 (adapters are not quantised).
  var floatType: DType? { OutputDType(rawValue: rawValue)?.dtype }
}

/// The float dtypes an output may be written in.
enum OutputDType: String, ExpressibleByArgument, CaseIterable {
  case f32, f16, bf16

  var dtype: DType {
    switch self {
    case .f32: .f32
    case .f16: .f16
    case .bf16: .bf16
    }
  }
}
