import Adapters
import ArgumentParser
import Checkpoints

struct InspectCommand: PipelineCommand {
  static let schema = "fedlora.inspect/1"
  static let defaultTop = 4

  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show what checkpoints and adapters hold; compare client adapters with their aggregates.",
    discussion: """
      One adapter (a PEFT folder, a safetensors or GGUF LoRA): a per-layer table of shape, \
      rank, alpha, scale, dtype, ||A||, ||B||, ||sBA||, leading singular values of sBA, \
      numerical and stable rank, NaN/Inf counts and flags (B all zeros: an untrained adapter; \
      rank-deficient factors; non-finite values).

      Several adapters (clients): per layer ||T|| of the ideal update, each client's cosine to \
      T, and the relative error of FedAvg and FLoRA-NA beside the rank-R floor; with \
      --against MERGED, the error of an adapter someone else produced, and a verdict. An \
      audit first compares what the adapter records of its making (fedlora merges record each \
      client's SHA-256, the weights, the method) with the clients and weights given: missing or \
      unknown clients, other weights or, with --expect, another method fail the expectation \
      (exit 1, code provenance-mismatch) unless --waive names them. Verdicts: optimal-at-rank \
      (at the rank-R floor: no adapter of that rank does better), as-good-as-flora-na, \
      between-fedavg-and-flora-na, no-better-than-fedavg, not-an-aggregate (no closer to T than \
      adding nothing).

      Any other checkpoint, or with --file or --tensors: header facts only (format, tensors, \
      dtypes, metadata), which never touches tensor data.

      \(ColumnLegend.help)
      """
  )

  @Argument(help: "Checkpoint or adapter files or folders.", completion: .file())
  var paths: [String]

  @Flag(help: "Header facts only, even for adapters.")
  var file = false

  @Flag(help: "List every tensor: name, dtype, shape, byte offset and size (header view).")
  var tensors = false

  @Option(help: "Only tensors (header view) or layers whose name matches this regular expression.")
  var filter: String?

  @Option(help: "Sort layers by this column (numbers largest first).")
  var sort: String?

  @Option(
    parsing: .unconditional,
    help: "How many leading singular values to show per layer (one adapter; default: \(defaultTop)).")
  var top: Int?

  @Option(parsing: .unconditional, help: "Rank R of the floor (clients; default: their largest rank).")
  var rank: Int?

  @OptionGroup var weighting: WeightOptions

  @Option(
    help:
      "A merged adapter to audit against the clients (a fedlora merge's recorded weights and client digests are used and checked).",
    completion: .file())
  var against: String?

  @Option(
    help:
      "With --against: exit 1 when the audited adapter's model error is worse than this rule's (fedavg, flora-na or floor) beyond the rounding its dtype allows."
  )
  var expect: Audit.Rule?

  @Option(
    parsing: .upToNextOption,
    help: ArgumentHelp(
      "With --expect: let these disagreements between the audited adapter's recorded provenance and what is given pass (clients: recorded clients missing or unknown ones given; weights: given weights not the recorded ones; method: the recorded method is not the expected rule's). Comma-separated or repeated.",
      valueName: "clients|weights|method"))
  var waive: [String] = []

  @Option(
    parsing: .unconditional,
    help: "LoRA alpha for adapters without one of their own (bare safetensors, GGUF without adapter.lora.alpha).")
  var alpha: Double?

  @Flag(help: "Treat a module a client lacks as a zero update.")
  var allowMissing = false

  @Flag(help: "Compare clients whose configs name different base models (with a warning) instead of refusing.")
  var allowDifferentBases = false

  @Option(
    help: "Write an SVG plot of the per-layer errors (clients) or update norms (one adapter).", completion: .file())
  var plot: String?

  @OptionGroup var llama: LlamaOptions

  @OptionGroup var outputOptions: OutputOptions

  @Flag(help: "Print the layer table as CSV.")
  var csv = false

  @Flag(help: "Print the layer table as Markdown.")
  var markdown = false

  @Flag(help: "End the text, CSV or Markdown output with what each column means.")
  var explain = false

  /// The `--waive` values, split at commas and checked.
  var waived: Set<ProvenanceCheck.Mismatch> {
    Set(waive.flatMap { $0.split(separator: ",") }.compactMap { ProvenanceCheck.Mismatch(rawValue: String($0)) })
  }

  var json: Bool { outputOptions.json }

  /// The options that only adapter tables use (the header view refuses them).
  var adapterOptions: [String] {
    [
      ("--sort", sort != nil), ("--top", top != nil), ("--rank", rank != nil), ("--weights", weighting.weights != nil),
      ("--samples", weighting.samples != nil), ("--against", against != nil), ("--alpha", alpha != nil),
      ("--allow-missing", allowMissing), ("--allow-different-bases", allowDifferentBases), ("--plot", plot != nil),
      ("--csv", csv), ("--markdown", markdown), ("--explain", explain),
      ("--base-config", llama.baseConfig != nil), ("--waive", !waive.isEmpty),
    ].filter(\.1).map(\.0)
  }

  func validate() throws {
    if [outputOptions.json, csv, markdown].filter({ $0 }).count > 1 {
      throw ValidationError("choose one of --json, --csv, --markdown")
    }
    if let filter, (try? Regex(filter)) == nil { throw ValidationError("--filter is not a valid regular expression") }
    if file || tensors, let first = adapterOptions.first {
      throw ValidationError("\(first) applies to adapter tables; --\(file ? "file" : "tensors") shows the header view")
    }
    if expect != nil, against == nil {
      throw ValidationError("--expect judges the adapter given with --against: give --against")
    }
    if !waive.isEmpty, expect == nil {
      throw ValidationError("--waive lets provenance disagreements pass an --expect gate: give --expect")
    }
    for value in waive.flatMap({ $0.split(separator: ",") })
    where ProvenanceCheck.Mismatch(rawValue: String(value)) == nil {
      throw ValidationError(
        "--waive '\(value)' is not \(ProvenanceCheck.Mismatch.allCases.map(\.rawValue).joined(separator: ", ") )")
    }
    if explain, json {
      throw ValidationError("--explain adds a legend to the text, CSV or Markdown output, not to --json")
    }
    let clientView = paths.count > 1 || against != nil
    if clientView, top != nil { throw ValidationError("--top applies to one adapter's table, not to a set of clients") }
    if !clientView,
      let first = [
        ("--rank", rank != nil), ("--weights", weighting.weights != nil), ("--samples", weighting.samples != nil),
        ("--allow-missing", allowMissing), ("--allow-different-bases", allowDifferentBases),
      ].first(where: \.1)
    {
      throw ValidationError("\(first.0) applies to several clients (or --against); one adapter is shown alone")
    }
    try weighting.check(clients: paths.count)
    if let top, top < 0 { throw ValidationError("--top must be 0 or more (got \(top))") }
    if let rank, rank < 1 { throw ValidationError("--rank must be at least 1 (got \(rank))") }
    if let alpha, !(alpha.isFinite && alpha > 0) {
      throw ValidationError("--alpha must be a positive number (got \(alpha))")
    }
  }

  func execute() throws {
    Memory.keepFreedBlocks()
    if let plot {
      try PathConflicts.check([.file(plot)], inputs: paths + [against, llama.baseConfig].compactMap { $0 })
    }
    // Each path is read once, whichever view it gets.
    let checkpoints = try paths.map { try Checkpoint.open($0) }
    if !file, !tensors, let adapters = try loadAdapters(checkpoints) {
      let (output, failed) = try AdapterReportView(options: self).render(adapters)
      output.forEach(json ? Terminal.out : Session.result)
      if failed { throw ExitCode.failure }
      return
    }
    if let first = adapterOptions.first {
      throw ValidationError(
        "\(first) applies to adapter tables; \(paths.joined(separator: ", ")) holds no adapter, so only its header is shown"
      )
    }
    if filter != nil, !tensors {
      throw ValidationError(
        "--filter selects layers of adapter tables or tensors of --tensors; the header view of \(paths.joined(separator: ", ")) lists neither"
      )
    }
    try runFileLevel(checkpoints)
  }

  /// The adapters at `paths`, or nil when some path is a plain checkpoint (header view).
  private func loadAdapters(_ checkpoints: [Checkpoint]) throws -> [Adapter]? {
    var adapters: [Adapter] = []
    for checkpoint in checkpoints {
      do {
        adapters.append(
          try Adapter.load(checkpoint, alpha: alpha, llamaHeads: llama.heads(), lenient: true, model: llama.model()))
      } catch AdapterError.noAdapterTensors {
        return nil
      } catch AdapterError.checkpoint {
        return nil
      } catch AdapterError.unsupportedPEFTType(let path, let type) {
        Session.warn("\(path): PEFT type \(type) is not LoRA: showing its header only")
        return nil
      }
    }
    adapters = try QKRowOrder.resolve(adapters, heads: llama.heads())
    if alpha != nil, !adapters.contains(where: \.usesGivenAlpha) {
      throw ValidationError(
        "--alpha is for adapters without an alpha of their own; every adapter here has one (adapter_config.json or adapter.lora.alpha)"
      )
    }
    return adapters
  }

  /// `--filter` compiled (once per use site: a regex compile per name would dominate a listing).
  var nameFilter: (String) -> Bool {
    guard let pattern = filter.flatMap({ try? Regex($0) }) else { return { _ in true } }
    return { name in (try? pattern.firstMatch(in: name)) != nil }
  }

  private func runFileLevel(_ checkpoints: [Checkpoint]) throws {
    let schema = "fedlora.inspect.file/1"
    try Session.under(schema: schema) { try fileLevel(checkpoints, schema: schema) }
  }

  private func fileLevel(_ checkpoints: [Checkpoint], schema: String) throws {
    let keep = nameFilter
    var reports: [JSON] = []
    for checkpoint in checkpoints {
      let listed = tensors ? checkpoint.tensors.filter { keep($0.name) } : nil
      if json {
        reports.append(FileReport.json(checkpoint, tensors: listed))
      } else {
        FileReport.text(checkpoint, tensors: listed).forEach(Session.result)
      }
    }
    if json {
      Terminal.out(Session.document(schema: schema, [("files", .array(reports))]))
    }
  }
}

extension Audit.Rule: ExpressibleByArgument {}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
