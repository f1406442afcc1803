import Adapters
import Checkpoints

extension AdapterReportView {
  /// `inspect ADAPTER`: each module's statistics (norms, singular values, ranks, flags), the
  /// adapter's format, size and config; failed when a module cannot be read.
  func single(_ adapter: Adapter) throws -> (lines: [String], failed: Bool) {
    let stats = try parallelMap(adapter.modules.filter { keep($0.name) }) { try ModuleStatistics($0) }
    // Modules that could not be read: a row each, flagged with the reason (the run then exits 1).
    let unreadable = adapter.problems.filter { $0.code != "config-rank-mismatch" }.filter { keep($0.module ?? "") }
    let table = statisticsTable(stats, unreadable: unreadable)
    let facts = Facts(adapter)
    let flagged = stats.filter { !$0.flags.isEmpty }
    let plot = SVGPlot(
      title: "||sBA|| per layer: \(adapter.path)", labels: stats.map(\.name),
      series: [SVGPlot.Series(name: "||sBA||_F", colour: "#1f77b4", values: stats.map(\.normUpdate))])
    let failure =
      unreadable.isEmpty
      ? nil
      : (
        code: "unreadable-modules",
        message: "\(adapter.path): \(unreadable.count) modules cannot be read (first: \(unreadable[0].description))"
      )
    // The statistics read, the report is the adapter view's: a failure from here on has its schema.
    return try Session.under(schema: "fedlora.inspect.adapter/1") {
      try emit(
        table, schema: "fedlora.inspect.adapter/1", summary: summary(adapter, facts, flagged: flagged),
        lines: lines(adapter, facts, flagged: flagged, unreadable: unreadable), bar: "norm_sBA", plot: plot,
        failure: failure)
    }
  }

  /// What the summary says of the adapter as a whole.
  private struct Facts {
    let parameters: Int
    let bytes: Int
    let targets: [String]

    init(_ adapter: Adapter) {
      parameters = adapter.modules.reduce(0) { $0 + $1.a.elementCount + $1.b.elementCount }
      bytes = adapter.checkpoint.tensors.reduce(0) { $0 + $1.byteCount }
      targets = adapter.config?.targetModules ?? AdapterConfig.targets(of: adapter.modules.map(\.name))
    }
  }

  /// A row per module's statistics (`norm_bias` only for adapters with `lora_B.bias`), then a
  /// row per unreadable module.
  private func statisticsTable(_ stats: [ModuleStatistics], unreadable: [AdapterError]) -> ReportTable {
    let k = options.top ?? InspectCommand.defaultTop
    let biased = stats.contains { $0.normBias != nil }  // norm_bias only for adapters with lora_B.bias
    var table = ReportTable(
      columns: ["module", "d", "k", "r", "alpha", "scale", "dtype", "norm_A", "norm_B"] + (biased ? ["norm_bias"] : [])
        + ["norm_sBA"]
        + (0..<k).map { "sigma_\($0 + 1)" } + ["numerical_rank", "stable_rank", "below_eps", "nan", "inf", "flags"])
    for s in stats {
      table.rows.append(
        [
          .text(s.name), .integer(s.shape[0]), .integer(s.shape[1]), .integer(s.rank), .number(s.alpha),
          .number(s.scale),
          .text(s.dtype.rawValue), .number(s.normA), .number(s.normB),
        ] + (biased ? [.number(s.normBias)] : []) + [.number(s.normUpdate)]
          + (0..<k).map { .number($0 < s.singularValues.count ? s.singularValues[$0] : nil) }
          + [
            .integer(s.numericalRank), .number(s.stableRank), .integer(s.belowStoragePrecision), .integer(s.nanCount),
            .integer(s.infCount),
            .text(s.flags.joined(separator: ",")),
          ])
    }
    for problem in unreadable {
      table.rows.append(
        [.text(problem.module ?? "")] + Array(repeating: .number(nil), count: table.columns.count - 2) + [
          .text("unreadable: \(problem.code)")
        ])
    }
    return table
  }

  /// The document's fields beside the table: the adapter's format, size, targets, config,
  /// flagged modules and problems.
  private func summary(_ adapter: Adapter, _ facts: Facts, flagged: [ModuleStatistics]) -> [(
    key: String, value: JSON
  )] {
    [
      ("path", .string(adapter.path)), ("format", .string(adapter.sourceFormat.rawValue)),
      ("metadata", .object(adapter.formatMetadata.map { ($0.key, .string($0.value)) })),
      ("parameters", JSON(facts.parameters)), ("bytes", JSON(facts.bytes)), ("modules", JSON(adapter.modules.count)),
      ("target_modules", .array(facts.targets.map { .string($0) })),
      (
        "config",
        adapter.config.map { c in
          .object([
            ("r", JSON(c.rank)), ("lora_alpha", JSON(c.alpha)), ("use_rslora", .bool(c.useRSLoRA)),
            ("use_dora", .bool(c.useDoRA)),
            ("rank_pattern", .object(c.rankPattern.map { ($0.pattern, JSON($0.value)) })),
            ("alpha_pattern", .object(c.alphaPattern.map { ($0.pattern, JSON($0.value)) })),
            ("base_model", c.baseModel.map { .string($0) } ?? .null),
          ])
        } ?? .null
      ),
      (
        "flagged",
        .array(
          flagged.map { .object([("module", .string($0.name)), ("flags", .array($0.flags.map { .string($0) }))]) })
      ),
      (
        "problems",
        .array(
          adapter.problems.map {
            .object([
              ("module", .string($0.module ?? "")), ("code", .string($0.code)), ("message", .string($0.description)),
            ])
          })
      ),
    ]
  }

  /// The text report's lines below the table: what the adapter is, its config, the flagged
  /// modules and the problems.
  private func lines(
    _ adapter: Adapter, _ facts: Facts, flagged: [ModuleStatistics], unreadable: [AdapterError]
  ) -> [String] {
    var lines = [
      "\(adapter.path): \(adapter.sourceFormat.rawValue) LoRA adapter, \(adapter.modules.count) modules, \(NumberFormat.count(facts.parameters)) parameters, \(NumberFormat.bytes(facts.bytes))",
      "targets: \(facts.targets.joined(separator: ", "))",
    ]
    lines += adapter.formatMetadata.map { "metadata: \($0.key) = \($0.value)" }
    if let config = adapter.config {
      lines.append(
        "config: r \(config.rank), lora_alpha \(NumberFormat.fixed(config.alpha, 1))\(config.useRSLoRA ? ", rsLoRA" : "")\(config.useDoRA ? ", DoRA (not mergeable)" : "")"
          + (config.rankPattern.isEmpty
            ? "" : ", rank_pattern \(config.rankPattern.map { "\($0.pattern)=\($0.value)" }.joined(separator: " "))")
          + (config.alphaPattern.isEmpty
            ? ""
            : ", alpha_pattern \(config.alphaPattern.map { "\($0.pattern)=\(NumberFormat.fixed($0.value, 1))" }.joined(separator: " "))")
      )
    }
    lines.append(
      flagged.isEmpty
        ? "flagged layers: none"
        : "flagged layers: "
          + flagged.map { "\($0.name) (\($0.flags.joined(separator: ", ")))" }.joined(separator: "; "))
    lines += unreadable.map { "problem: \($0.description)" }
    let mismatched = adapter.problems.filter { $0.code == "config-rank-mismatch" }
    if let first = mismatched.first {
      lines.append(
        "problem: \(mismatched.count) modules have a config rank their tensors do not have (first: \(first.description))"
      )
    }
    return lines
  }
}
