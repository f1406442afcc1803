import Adapters
import ArgumentParser
import Checkpoints

struct MergeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "merge",
    abstract: "Aggregate client LoRA adapters into one adapter (FLoRA-NA, FedAvg, SVD-optimal, stacking).",
    discussion: """
      CLIENT is a PEFT folder (adapter_config.json + adapter_model.safetensors), a bare \
      safetensors adapter (give --alpha) or a llama.cpp GGUF LoRA; formats may be mixed.

      Methods (see aggregation.md): fedavg (alias fedit) averages A and B separately; flora-na \
      learns per-client coefficients p, q so that (sum p_u A_u, sum q_u s_u B_u) comes as close \
      to the ideal update T = sum w_u s_u B_u A_u as a rank-r pair of that form can, by \
      alternating least squares on r x r Gram blocks started at FedAvg (fedlora's solver: \
      the paper states the objective, not the solver), never worse than FedAvg; svd writes \
      the best rank-R approximation of T (--rank); stack concatenates the factors (exact, \
      rank sum r_u).

      After writing, prints the relative error ||T - Bh Ah|| / ||T|| per layer and for the \
      model, beside the rank-R floor: on stderr, or as JSON on stdout with --json. The output \
      is written to a temporary sibling and renamed into place.
      """
  )

  @Argument(help: "Client adapters (folders or files).", completion: .file())
  var clients: [String]

  @Option(name: .shortAndLong, help: "Output: a PEFT folder, FILE.safetensors or FILE.gguf.", completion: .file())
  var output: String

  @Option(help: "fedavg (fedit), flora-na, svd or stack.")
  var method: String = "flora-na"

  @OptionGroup var weighting: WeightOptions

  @Flag(help: "Use --weights as given, without normalising (a plain sum of adapters).")
  var keepWeights = false

  @Option(help: "Output format: peft, safetensors or gguf (default: by the extension of OUTPUT, else peft).")
  var format: AdapterWriter.Format?

  @Option(help: "Output dtype: f32, f16 or bf16 (default: the clients' dtype).")
  var dtype: OutputDType?

  @Option(help: "Output rank for --method svd (default: the clients' largest rank).")
  var rank: Int?

  @Option(help: "FLoRA-NA coefficients per layer or one set for the whole model.")
  var scope: Scope = .layer

  @Option(help: "FLoRA-NA iteration limit.")
  var maxIterations = 100

  @Option(help: "LoRA alpha for bare safetensors adapters without adapter_config.json.")
  var alpha: Double?

  @Option(help: "Base checkpoint to fold the aggregate into (safetensors file, sharded folder or index, GGUF): OUTPUT is then a merged checkpoint.", completion: .file())
  var base: String?

  @Option(help: "With --base and a folder OUTPUT: tensor data per shard (default 5GB).")
  var shardSize: String?

  @Option(help: "With --method fedex: where the FedAvg adapter goes (default OUTPUT.adapter).", completion: .file())
  var adapterOutput: String?

  @Flag(help: "Treat a module a client lacks as a zero update (with a warning) instead of failing.")
  var allowMissing = false

  @OptionGroup var llama: LlamaOptions

  @Flag(help: "Print the merge report as JSON (schema fedlora.merge/1) on standard output.")
  var json = false

  @Flag(help: "No progress display.")
  var quiet = false

  enum Scope: String, ExpressibleByArgument, CaseIterable { case layer, model }

  func validate() throws {
    guard let parsed = Method(name: method) else { throw ValidationError("unknown --method '\(method)': fedavg, fedit, flora-na, svd, stack, exact or fedex") }
    if parsed.needsBase, base == nil { throw ValidationError("--method \(parsed.rawValue) writes merged base weights: give --base") }
    if let shardSize, Format.parseSize(shardSize) == nil { throw ValidationError("--shard-size '\(shardSize)' is not a size such as 5GB") }
    if let rank, rank < 1 { throw ValidationError("--rank must be positive") }
  }


  func run() throws {
    // Adapter merges churn through tens of MB per layer; base merges stream row slices, where a
    // retained heap would only add resident memory.
    if base == nil { Memory.keepFreedBlocks() }
    do {
      guard let method = Method(name: method) else { throw ValidationError("unknown method") }
      let heads = try llama.heads()
      let adapters = try clients.map { path throws(AdapterError) in try Adapter.load(path, alpha: alpha, llamaHeads: heads) }
      let set = try ClientSet(adapters, weights: weighting.spec, normalize: !keepWeights, allowMissing: allowMissing)
      set.warnings.forEach(Terminal.warn)
      var options = MergeOptions(method: method)
      options.rank = rank
      options.sharedCoefficients = scope == .model
      options.flora.maxIterations = maxIterations
      let merge = try Merge(set, options: options, withBase: base != nil)
      if let base {
        try writeMergedBase(merge, base: base, set: set)
        return
      }
      let outputFormat = format ?? (output.hasSuffix(".gguf") ? .gguf : output.hasSuffix(".safetensors") ? .safetensors : .peft)
      try AdapterWriter.write(merge, format: outputFormat, to: output, dtype: dtype?.dtype, provenance: provenance(method.rawValue, set), llamaHeads: heads)
      report(merge, set: set)
    } catch let error as ValidationError {
      throw error
    } catch {
      throw fail(error, json: json)
    }
  }
}

extension MergeCommand {
  /// `--base`: the merged checkpoint (and for fedex, the FedAvg adapter beside it).
  func writeMergedBase(_ merge: Merge, base path: String, set: ClientSet) throws {
    let base = try Checkpoint.open(path)
    let plan = try BaseMerge.plan(base: base, merge: merge, dtype: dtype?.dtype)
    if !plan.requantised.isEmpty {
      Terminal.warn("\(plan.requantised.count) quantised base weights are written as \(dtype?.dtype.rawValue ?? "F16") after the merge (first: \(plan.requantised[0]))")
    }
    let total = plan.tensors.reduce(0) { $0 + $1.byteCount }
    let progress = Progress(total: total, enabled: !quiet)
    let metadata = base.metadata.filter { !$0.key.hasPrefix("fedlora.") } + provenance(merge.options.method.rawValue, set).metadata
    if output.hasSuffix(".gguf") {
      // A safetensors llama base becomes a GGUF llama.cpp runs: its names, row order, hyper-parameters and vocabulary.
      let export = base.gguf == nil ? try LlamaGGUF.export(plan.tensors, folder: base.folder) : nil
      export?.report()
      let kv = base.gguf?.metadata ?? export?.metadata ?? [("general.architecture", .string("llama"))]
      try GGUFWriter.write(export?.tensors ?? plan.tensors, metadata: kv + metadata.map { ($0.key, .string($0.value)) }.filter { entry in !kv.contains { $0.key == entry.key } },
                           alignment: base.gguf?.alignment ?? GGUFFile.defaultAlignment, to: output, progress: progress.handler)
    } else if output.hasSuffix(".safetensors") {
      try SafeTensorsWriter.write(plan.tensors, metadata: metadata, to: output, progress: progress.handler)
    } else {
      try SafeTensorsWriter.writeSharded(
        plan.tensors, metadata: metadata, shardSize: shardSize.flatMap(Format.parseSize) ?? 5_000_000_000, to: output,
        extraFiles: try BaseFolder.companionFiles(of: base), progress: progress.handler)
    }
    progress.finish()
    if merge.options.method == .fedex {
      let adapterPath = adapterOutput ?? output + ".adapter"
      try AdapterWriter.write(merge, format: .peft, to: adapterPath, dtype: dtype?.dtype, provenance: provenance("fedex", set))
      Terminal.err("wrote the FedAvg adapter to \(adapterPath): base + adapter = W0 + T")
    }
    report(merge, set: set)
  }

  /// What an output records of its making: the method, the clients' folder names and weights.
  func provenance(_ method: String, _ set: ClientSet) -> AdapterWriter.Provenance {
    AdapterWriter.Provenance(method: method, clients: clients.map { String($0.split(separator: "/").last ?? "") }, weights: set.weights, version: FedLora.version)
  }

  /// The merge report: JSON on stdout with --json, else the table on stderr.
  func report(_ merge: Merge, set: ClientSet) {
    if json {
      Terminal.out(MergeReportView.json(merge.report, output: output, set: set).prettyText)
    } else {
      MergeReportView.text(merge.report, output: output).forEach(Terminal.err)
    }
  }
}

/// The small files that travel with a model folder (config, tokenizer), copied beside a merged one.
enum BaseFolder {
  static func companionFiles(of base: Checkpoint) throws -> [(name: String, contents: [UInt8])] {
    let folder = base.folder
    let skip = [".safetensors", ".gguf", ".bin", ".pt", ".pth", ShardedIndex.fileName]
    return try Checkpoint.listDirectory(folder)
      .filter { name in !skip.contains { name.hasSuffix($0) } && !name.hasPrefix(".") && !Checkpoint.isDirectory(folder + "/" + name) }
      .map { name in (name, try MappedFile.contents(of: folder + "/" + name)) }
  }
}

extension AdapterWriter.Format: ExpressibleByArgument {}

/// The merge summary: per layer and model-level relative error against the ideal update.
enum MergeReportView {
  static func json(_ report: MergeReport, output: String, set: ClientSet) -> JSON {
    func number(_ value: Double?) -> JSON { value.map { JSON($0) } ?? .null }
    return .object([
      ("schema", .string("fedlora.merge/1")),
      ("ok", .bool(true)),
      ("output", .string(output)),
      ("method", .string(report.method.rawValue)),
      ("clients", .array(set.clients.map { .string($0.path) })),
      ("weights", .array(set.weights.map { JSON($0) })),
      ("warnings", .array(set.warnings.map { .string($0) })),
      ("model", .object([("relative_error", number(report.modelError)), ("floor", number(report.modelFloor))])),
      ("layers", .array(report.layers.map { layer in
        var fields: [(key: String, value: JSON)] = [
          ("name", .string(layer.name)), ("shape", .array(layer.shape.map { JSON($0) })), ("rank", JSON(layer.rank)),
          ("norm_T", JSON(layer.normT)), ("relative_error", number(layer.relativeError)), ("floor", number(layer.relativeFloor)),
        ]
        if let p = layer.p, let q = layer.q, report.method == .floraNA {
          fields += [("p", .array(p.map { JSON($0) })), ("q", .array(q.map { JSON($0) })), ("iterations", layer.iterations.map { JSON($0) } ?? .null)]
        }
        return .object(fields)
      })),
    ])
  }

  static func text(_ report: MergeReport, output: String) -> [String] {
    var table = Table([("layer", .left), ("shape", .left), ("rank", .right), ("||T||", .right), ("error", .right), ("floor", .right)])
    func rel(_ value: Double?) -> String { value.map { Format.scientific($0) } ?? "n/a" }
    for layer in report.layers {
      table.add([layer.name, Format.shape(layer.shape), "\(layer.rank)", Format.scientific(layer.normT), rel(layer.relativeError), rel(layer.relativeFloor)])
    }
    return ["wrote \(output) (\(report.method.rawValue), \(report.layers.count) layers)"] + table.render()
      + ["model: relative error \(rel(report.modelError)), rank-R floor \(rel(report.modelFloor))"]
  }
}
