import Adapters
import ArgumentParser
import Checkpoints

struct MergeCommand: PipelineCommand {
  static let schema = "fedlora.merge/1"

  static let configuration = CommandConfiguration(
    commandName: "merge",
    abstract:
      "Aggregate client LoRA adapters into one adapter (FLoRA-NA, FedAvg, SVD-optimal, stacking), or into base weights.",
    discussion: """
      CLIENT is a PEFT folder (adapter_config.json + adapter_model.safetensors or .bin), a bare \
      safetensors adapter (give --alpha), a llama.cpp GGUF LoRA or a Hugging Face id in the \
      local cache (owner/name[@revision]); formats may be mixed. A .bin's pickle is \
      interpreted, never run: one naming any other global than torch's tensor rebuilders is refused.

      Methods: fedavg (alias fedit) averages A and B separately; flora-na \
      learns per-client coefficients p, q so that (sum p_u A_u, sum q_u s_u B_u) comes as close \
      to the ideal update T = sum w_u s_u B_u A_u as a rank-r pair of that form can, by \
      alternating least squares on r x r Gram blocks started at FedAvg (fedlora's solver: \
      the paper states the objective, not the solver), never worse than FedAvg; svd writes \
      the best rank-R approximation of T (--rank; a layer gets at most min(d, k), the clients' \
      ranks added up and, beyond the clients' largest rank, the rank of T); stack concatenates \
      the factors (exact, rank sum r_u). With --base: exact writes W0 + T, fedex writes the \
      FedAvg adapter (--adapter-output) and a base carrying the residual; the other methods \
      write W0 + Bh Ah.

      Which method: svd gives the lowest error any adapter of its rank can have (the floor); \
      flora-na keeps FedAvg's form (a weighted average of the clients' A and B), so clients can \
      keep training from it as from FedAvg, and is never worse than FedAvg; fedavg is the \
      standard federated baseline; stack is exact at the sum of the ranks; exact and fedex fold \
      T into the base exactly. The default is flora-na: FedAvg's size and form, closer to T.

      Prints the relative error ||T - Bh Ah|| / ||T|| per layer and for the model, beside the \
      floor (the best any adapter of the written rank can do), on standard output (--json: as \
      the document). \(ColumnLegend.help) Outputs are staged as hidden temporaries and renamed into place only when \
      complete; in an existing folder only the files of this output are replaced. An OUTPUT \
      that is an input or lies inside an input folder is refused.
      """
  )

  @Argument(
    help: "Client adapters (folders, files or Hugging Face ids), each given once (or in --recipe).", completion: .file()
  )
  var clients: [String] = []

  @Option(
    name: .shortAndLong,
    help:
      "Output: a PEFT folder, FILE.safetensors or FILE.gguf; with --base a merged checkpoint (a sharded folder, FILE.safetensors or FILE.gguf).",
    completion: .file())
  var output: String?

  @Option(help: ArgumentHelp(Self.methodList(default: Self.defaultMethod)))
  var method: String?

  static let defaultMethod = AggregationMethod.floraNA

  /// The methods, from the cases: "fedavg (alias fedit), flora-na (default), svd, stack; with
  /// --base also exact or fedex".
  static func methodList(default chosen: AggregationMethod? = nil) -> String {
    let named = AggregationMethod.allCases.map { method in
      var notes = method.aliases.map { "alias \($0)" }
      if method == chosen { notes.append("default") }
      return method.rawValue + (notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))")
    }
    let (adapter, base) = (
      zip(AggregationMethod.allCases, named).filter { !$0.0.needsBase }.map(\.1),
      zip(AggregationMethod.allCases, named).filter { $0.0.needsBase }.map(\.1)
    )
    return adapter.joined(separator: ", ") + "; with --base also " + base.joined(separator: " or ") + "."
  }

  @Option(
    help:
      "A YAML recipe of the merge: its options as keys (method, clients: [PATH or {path, weight|samples}], output, base, format, dtype, rank, scope, max_iterations, alpha, allow_missing, no_errors, keep_weights, base_config), paths relative to the recipe. An option it gives may not be given here too.",
    completion: .file(extensions: ["yaml", "yml"]))
  var recipe: String?

  @OptionGroup var weighting: WeightOptions

  @Flag(help: "Use --weights as given, without normalising (a plain sum of adapters).")
  var keepWeights = false

  @Option(
    help:
      "Adapter format: peft, safetensors, gguf, kohya (a .safetensors file), diffusers (a folder or .safetensors) or mlx (a folder). Default: .gguf by OUTPUT's extension, else the clients' own kohya, diffusers or MLX-LM format (kohya with diffusers clients: diffusers), else by the extension of OUTPUT, else peft. Not with --base."
  )
  var format: AdapterFormat?

  @Option(help: "Output dtype: f32, f16 or bf16 (default: the clients' dtype; with --base, the base's).")
  var dtype: OutputDType?

  @Option(parsing: .unconditional, help: "Output rank of --method svd (default: the clients' largest rank).")
  var rank: Int?

  @Option(help: "FLoRA-NA coefficients per layer or one set for the whole model: layer or model (default: layer).")
  var scope: Scope?

  @Option(parsing: .unconditional, help: "FLoRA-NA iteration limit (default: \(FloraNA.Options().maxIterations)).")
  var maxIterations: Int?

  @Option(
    parsing: .unconditional,
    help: "LoRA alpha for adapters without one of their own (bare safetensors, GGUF without adapter.lora.alpha).")
  var alpha: Double?

  @Option(
    help:
      "Base checkpoint to fold the aggregate into (safetensors file, sharded folder or index, GGUF): OUTPUT is then a merged checkpoint.",
    completion: .file())
  var base: String?

  @Option(help: "With --base and a folder OUTPUT: tensor data per shard (default 5GB).")
  var shardSize: String?

  @Option(help: "With --method fedex: where the FedAvg adapter goes (default OUTPUT.adapter).", completion: .file())
  var adapterOutput: String?

  @Flag(
    help:
      "Compute no errors (fedavg, stack, exact, fedex): the factors' weighted sum alone, no Gram work; the report gives shapes and ranks, errors null."
  )
  var noErrors = false

  @Flag(
    help:
      "Check everything that needs no computing and print the plan (each output file with its tensors, dtypes and bytes and what it replaces; each layer's output rank), writing nothing."
  )
  var dryRun = false

  @Flag(help: "Treat a module a client lacks as a zero update (with a warning) instead of failing.")
  var allowMissing = false

  @Flag(help: "End the report with what each column means.")
  var explain = false

  @Flag(
    help:
      "Merge clients whose configs name different base_model_name_or_path values (with a warning) instead of refusing.")
  var allowDifferentBases = false

  @OptionGroup var llama: LlamaOptions

  @OptionGroup var outputOptions: OutputOptions

  enum Scope: String, ExpressibleByArgument, CaseIterable { case layer, model }

  /// The output without trailing slashes (`out/` is `out`).
  var outputPath: String { trimmingTrailingSlashes(output ?? "") }

  var methodName: String { method ?? Self.defaultMethod.rawValue }

  /// The adapter format OUTPUT's extension names, if any.
  var formatOfExtension: AdapterFormat? { MergeDestination.adapterFormat(ofPath: outputPath) }

  /// Whether OUTPUT is a sharded merged checkpoint (a folder).
  var shardedOutput: Bool { base != nil && formatOfExtension == nil }

  var fedexAdapterPath: String { adapterOutput.map(trimmingTrailingSlashes) ?? outputPath + ".adapter" }

  func validate() throws {
    guard let recipe else { return try checkOptions() }
    try applying(MergeRecipe(path: recipe)).checkOptions()
  }

  /// This command with the recipe's options filled in; an option both give is a usage error.
  func applying(_ recipe: MergeRecipe) throws -> MergeCommand {
    let both = [
      ("CLIENT arguments", "clients", !clients.isEmpty), ("--output", "output", output != nil && recipe.output != nil),
      ("--method", "method", method != nil && recipe.method != nil),
      ("--base", "base", base != nil && recipe.base != nil),
      ("--format", "format", format != nil && recipe.format != nil),
      ("--dtype", "dtype", dtype != nil && recipe.dtype != nil),
      ("--rank", "rank", rank != nil && recipe.rank != nil), ("--scope", "scope", scope != nil && recipe.scope != nil),
      ("--max-iterations", "max_iterations", maxIterations != nil && recipe.maxIterations != nil),
      ("--alpha", "alpha", alpha != nil && recipe.alpha != nil),
      (
        "--weights/--samples", "clients' weights",
        (weighting.weights != nil || weighting.samples != nil) && (recipe.weights != nil || recipe.samples != nil)
      ),
      ("--allow-missing", "allow_missing", allowMissing && recipe.allowMissing != nil),
      ("--no-errors", "no_errors", noErrors && recipe.noErrors != nil),
      ("--keep-weights", "keep_weights", keepWeights && recipe.keepWeights != nil),
      ("--base-config", "base_config", llama.baseConfig != nil && recipe.baseConfig != nil),
    ]
    if let (flag, key, _) = both.first(where: { $0.2 }) {
      throw ValidationError("\(flag) given both here and in the recipe (\(key)): give each option in one place")
    }
    var command = self
    command.clients = recipe.clients.map(\.path)
    command.output = output ?? recipe.output
    command.method = method ?? recipe.method
    command.base = base ?? recipe.base
    if let format = recipe.format {
      guard let parsed = AdapterFormat(rawValue: format) else {
        throw ValidationError(
          "recipe: format '\(format)' is not \(AdapterFormat.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      command.format = parsed
    }
    if let dtype = recipe.dtype {
      guard let parsed = OutputDType(rawValue: dtype) else {
        throw ValidationError("recipe: dtype '\(dtype)' is not f32, f16 or bf16")
      }
      command.dtype = parsed
    }
    if let scope = recipe.scope {
      guard let parsed = Scope(rawValue: scope) else {
        throw ValidationError("recipe: scope '\(scope)' is not layer or model")
      }
      command.scope = parsed
    }
    command.rank = rank ?? recipe.rank
    command.maxIterations = maxIterations ?? recipe.maxIterations
    command.alpha = alpha ?? recipe.alpha
    command.weighting.weights = weighting.weights ?? recipe.weights
    command.weighting.samples = weighting.samples ?? recipe.samples
    command.allowMissing = allowMissing || recipe.allowMissing == true
    command.noErrors = noErrors || recipe.noErrors == true
    command.keepWeights = keepWeights || recipe.keepWeights == true
    command.llama.baseConfig = llama.baseConfig ?? recipe.baseConfig
    return command
  }

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

  func execute() throws {
    guard let recipe else { return try merge(recipeText: nil) }
    let parsed = try MergeRecipe(path: recipe)
    try applying(parsed).merge(recipeText: parsed.text)
  }

  /// The merge of these options (a recipe's applied), its text recorded in the provenance.
  func merge(recipeText: String?) throws {
    guard let method = AggregationMethod(name: methodName) else { throw ValidationError("unknown method") }
    try PathConflicts.checkDistinct(clients)
    try PathConflicts.check(outputs, inputs: clients + [base, llama.baseConfig].compactMap { $0 })
    // Adapter merges churn through tens of MB per layer; base merges stream row slices, where a
    // retained heap would only add resident memory.
    if base == nil { Memory.keepFreedBlocks() }
    // q/k row order of llama GGUF LoRAs: --base-config, else the base's, else the clients' own.
    let heads = try llama.heads() ?? base.flatMap { try QKRowOrder.heads(base: Checkpoint.open($0)) }
    let model = try llama.model()
    let loaded = try clients.map { path throws(AdapterError) in
      try Adapter.load(path, alpha: alpha, llamaHeads: heads, model: model)
    }
    let adapters = try QKRowOrder.resolve(loaded, heads: heads)
    if alpha != nil, !adapters.contains(where: \.usesGivenAlpha) {
      throw ValidationError(
        "--alpha is for adapters without an alpha of their own; every client has one (adapter_config.json or adapter.lora.alpha)"
      )
    }
    // The adapter's format: the clients' own by default (checked again against the inputs
    // when that is not what the extension named).
    let chosen = MergeDestination.chooseFormat(given: format, clients: adapters, path: outputPath)
    if llama.baseConfig != nil, !LlamaOptions.uses(adapters, output: base == nil ? chosen.format : nil) {
      throw ValidationError(LlamaOptions.unused + ": no client is one, and the output is neither GGUF nor MLX-LM")
    }
    if base == nil {
      if let note = chosen.note { Session.warn(note) }
      if chosen.format != (format ?? formatOfExtension ?? .peft) {
        try PathConflicts.check([adapterOutput(chosen.format)], inputs: clients)
      }
    }
    let set = try ClientSet(
      adapters, weights: weighting.spec, normalize: !keepWeights, allowMissing: allowMissing,
      allowDifferentBases: allowDifferentBases)
    Self.warnings(set, method: method).forEach(Session.warn)
    var options = MergeOptions(method: method)
    options.rank = rank
    options.sharedCoefficients = scope == .model
    options.computeErrors = !noErrors
    if let maxIterations { options.flora.maxIterations = maxIterations }
    options.planOnly = dryRun
    let merge = try Merge(set, options: options, withBase: base != nil)
    // The dry run is this run minus the solving and the writing: the same writers, checks and
    // folders, in a transaction that records what it would write.
    let transaction = OutputTransaction(dryRun: dryRun)
    var provenance = try AdapterWriter.Provenance(
      method: method.rawValue, set: set, version: FedLora.version, hashing: !dryRun)
    provenance.recipe = recipeText
    provenance.rank = rank
    var destination = MergeDestination(path: outputPath)
    destination.format = base == nil ? chosen.format : nil
    destination.base = try base.map { try Checkpoint.open($0) }
    destination.adapterPath = adapterOutput.map(trimmingTrailingSlashes)
    destination.dtype = dtype?.dtype
    destination.shardSize = shardSize.flatMap(NumberFormat.parseSize)
    destination.llamaHeads = heads
    let writer = try MergeWriter(merge, to: destination, provenance: provenance)
    if !writer.requantised.isEmpty {
      Session.warn(
        "\(writer.requantised.count) quantised base weights are written as \(dtype?.dtype.rawValue ?? "F16") after the merge (first: \(writer.requantised[0]))"
      )
    }
    let progress = Progress(total: writer.totalBytes, enabled: base != nil && Session.showsProgress && !dryRun)
    writer.export?.report()
    let report = try writer.write(progress: base == nil ? nil : progress.handler, in: transaction)
    if base != nil { progress.finish() }
    if dryRun { return showPlan(merge, files: transaction.planned) }
    try transaction.commit()
    show(report, method: method, set: set, format: base == nil ? (chosen.format, chosen.source) : nil)
  }

  /// The output's dtype and where it comes from (`nil` for a merged base without `--dtype`:
  /// each tensor keeps the base's).
  func outputDType(_ set: ClientSet) -> (dtype: DType?, source: String) {
    if let dtype { return (dtype.dtype, ClientSet.DTypeSource.given.rawValue) }
    if base != nil { return (nil, "base") }
    let (chosen, source) = set.outputDType
    return (chosen, source.rawValue)
  }

  /// The warnings a merge of `set` by `method` owes the user.
  static func warnings(_ set: ClientSet, method: AggregationMethod) -> [String] {
    set.warnings + (method.zeroPadsRanks ? [set.rankPaddingWarning].compactMap { $0 } : [])
  }
}

extension MergeCommand {
  /// `--dry-run`: the files the merge would write and each layer's output rank, nothing solved.
  func showPlan(_ merge: Merge, files: [OutputTransaction.PlannedFile]) {
    let set = merge.set
    let layers = zip(set.moduleNames, merge.outputRanks).map { module, rank in
      let entries = set.modules(named: module).compactMap { $0 }
      // svd beyond the clients' largest rank is clamped to T's numerical rank, which takes computing.
      let bounded = merge.method.rankIsUpperBound(rank, clientRanks: entries.map(\.rank))
      return DryRunView.Layer(
        name: module, shape: entries.first?.updateShape ?? [0, 0], rank: rank,
        note: bounded
          ? "svd ranks beyond the clients' largest are upper bounds: a layer whose update has lower rank gets that"
          : nil)
    }
    let (dtype, source) = outputDType(set)
    Session.result(
      "plan: \(merge.options.method.rawValue) of \(set.clients.count) clients, weights \(set.weights.map { NumberFormat.fixed($0, 3) }.joined(separator: ", ")), dtype \(dtype?.rawValue ?? "of the base")"
    )
    DryRunView.show(
      files.map { ($0.path, $0.tensors) }, layers: layers,
      summary: [
        ("output", .string(outputPath)), ("method", .string(merge.options.method.rawValue)),
        ("clients", .array(set.clients.map { .string($0.path) })), ("weights", .array(set.weights.map { JSON($0) })),
        ("dtype", dtype.map { .string($0.rawValue) } ?? .null), ("dtype_source", .string(source)),
      ])
  }

  /// The merge report: the document with --json, else the table on stdout.
  func show(
    _ report: MergeReport, method: AggregationMethod, set: ClientSet,
    format: (format: AdapterFormat, source: MergeDestination.FormatSource)?
  ) {
    let view = MergeReportView(
      report: report, output: outputPath, adapterOutput: method == .fedex ? fedexAdapterPath : nil, set: set,
      asked: rank, dtype: outputDType(set), format: format)
    Session.finish(view.json)
    (view.text + (explain ? ColumnLegend.lines(for: view.columns) : [])).forEach(Session.result)
  }
}

extension AdapterFormat: ExpressibleByArgument {}
