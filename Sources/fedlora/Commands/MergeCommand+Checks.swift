import Adapters
import ArgumentParser
import Checkpoints

extension MergeCommand {
  /// Every check of the options that needs no file.
  func checkOptions() throws {
    guard !clients.isEmpty else { throw ValidationError("give the clients (CLIENT arguments or a --recipe)") }
    guard output != nil else { throw ValidationError("give --output (or output: in a --recipe)") }
    try weighting.validate()
    let method = methodName
    guard let parsed = AggregationMethod(name: method) else {
      throw ValidationError("unknown --method '\(method)': \(Self.methodList())")
    }
    if parsed.needsBase, base == nil {
      throw ValidationError("--method \(parsed.rawValue) writes merged base weights: give --base")
    }
    try weighting.check(clients: clients.count)
    if keepWeights, weighting.weights == nil {
      throw ValidationError(
        "--keep-weights keeps --weights as given, so it needs --weights (--samples are counts: always normalised)")
    }
    if let rank {
      guard parsed == .svd else {
        throw ValidationError(
          "--rank sets the output rank of --method svd; \(parsed.rawValue) writes the clients' largest rank")
      }
      guard rank >= 1 else { throw ValidationError("--rank must be at least 1 (got \(rank))") }
    }
    if scope != nil || maxIterations != nil, parsed != .floraNA {
      throw ValidationError("--scope and --max-iterations tune flora-na, not \(parsed.rawValue)")
    }
    if let maxIterations, maxIterations < 1 {
      throw ValidationError("--max-iterations must be at least 1 (got \(maxIterations))")
    }
    if let alpha, !(alpha.isFinite && alpha > 0) {
      throw ValidationError("--alpha must be a positive number (got \(alpha))")
    }
    if noErrors, parsed.solvesOnGrams {
      throw ValidationError(
        "--no-errors: \(parsed.rawValue) solves on the Gram blocks the errors come from, so it always reports them (fedavg, stack, exact and fedex can skip them)"
      )
    }
    if adapterOutput != nil, parsed != .fedex {
      throw ValidationError(
        "--adapter-output is where --method fedex writes its FedAvg adapter; \(parsed.rawValue) writes none")
    }
    if let shardSize {
      guard shardedOutput else {
        throw ValidationError("--shard-size applies to a sharded merged checkpoint: --base with a folder OUTPUT")
      }
      guard NumberFormat.parseSize(shardSize) != nil else {
        throw ValidationError("--shard-size '\(shardSize)' is not a size such as 5GB")
      }
    }
    if let format {
      guard base == nil else {
        throw ValidationError(
          "--format chooses an adapter's format; with --base, OUTPUT's extension decides (.safetensors, .gguf, else a sharded folder)"
        )
      }
      if let named = formatOfExtension, named != format,
        !(named == .safetensors && (format == .kohya || format == .diffusers))
      {
        throw ValidationError(
          "--format \(format.rawValue) contradicts OUTPUT '\(outputPath)', which names a \(named.rawValue) file")
      }
      if format == .kohya, formatOfExtension == nil {
        throw ValidationError(
          "--format kohya writes one file: give an OUTPUT ending in .safetensors ('\(outputPath)' has no extension)")
      }
    }
  }

  /// The output an adapter of `format` at OUTPUT is, as the conflict check sees it.
  func adapterOutput(_ format: AdapterFormat) -> PathConflicts.Output {
    switch format {
    case .peft: .folder(outputPath, writes: AdapterWriter.peftFiles.contains)
    case .mlx: .folder(outputPath, writes: ForeignWriter.mlxFiles.contains)
    case .diffusers where formatOfExtension == nil: .folder(outputPath, writes: { $0 == ForeignWriter.diffusersFile })
    default: .file(outputPath)
    }
  }

  /// The outputs this run writes, as the conflict check sees them.
  var outputs: [PathConflicts.Output] {
    guard base != nil else {
      return [adapterOutput(format ?? formatOfExtension ?? .peft)]
    }
    // A sharded output also writes the base's companion files (config, tokenizer) beside its shards.
    let companions = Set(base.map { Checkpoint.companionNames(in: Checkpoint.folder(holding: $0)) } ?? [])
    let merged: PathConflicts.Output =
      shardedOutput
      ? .folder(outputPath, writes: { ShardedIndex.isOutputFile($0) || companions.contains($0) }) : .file(outputPath)
    return [merged]
      + (AggregationMethod(name: methodName) == .fedex
        ? [.folder(fedexAdapterPath, writes: AdapterWriter.peftFiles.contains)] : [])
  }
}
