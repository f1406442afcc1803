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
}

extension AdapterFormat: ExpressibleByArgument {}
