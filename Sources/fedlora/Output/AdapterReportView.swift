import Adapters
import Checkpoints

/// `inspect` of adapters: one adapter's layer statistics, or a client set against its aggregates.
struct AdapterReportView {
  let options: InspectCommand
  private let keep: (String) -> Bool

  init(options: InspectCommand) {
    self.options = options
    keep = options.nameFilter
  }

  /// The lines to print, and whether a check failed (unreadable modules, an expectation not met).
  func render(_ adapters: [Adapter]) throws -> (lines: [String], failed: Bool) {
    adapters.count == 1 && options.against == nil ? try single(adapters[0]) : try clients(adapters)
  }

  /// Formats the table (with summary lines around it for the terminal) and writes the plot.
  /// `failure`: a check that failed (the document says `ok: false`, the command exits 1).
  private func emit(
    _ table: ReportTable, schema: String, summary: [(key: String, value: JSON)], lines: [String], bar: String,
    plot: SVGPlot?,
    failure: (code: String, message: String)? = nil
  ) throws -> (lines: [String], failed: Bool) {
    var table = table
    if let column = options.sort { try table.sort(by: column) }
    if let path = options.plot, let plot {
      try OutputTransaction.run(in: nil) { try $0.file(path) { file in try file.write(Array(plot.svg.utf8), at: 0) } }
    }
    if options.outputOptions.json {
      let error: [(key: String, value: JSON)] =
        failure.map { [("error", .object([("code", .string($0.code)), ("message", .string($0.message))]))] } ?? []
      return (
        [
          Session.document(
            schema: schema, ok: failure == nil,
            summary + [("plot", options.plot.map { .string($0) } ?? .null), ("layers", table.json)] + error)
        ], failure != nil
      )
    }
    if let failure { Terminal.err("fedlora: error: \(failure.message.visible)") }
    if options.csv { return ([table.csv], failure != nil) }
    if options.markdown { return ([table.markdown], failure != nil) }
    // Summary lines carry names from files: their control characters are shown, not sent.
    return (
      table.text(bar: bar) + [""] + lines.map(\.visible) + (options.plot.map { ["wrote \($0)"] } ?? []), failure != nil
    )
  }

  // MARK: One adapter

  private func single(_ adapter: Adapter) throws -> (lines: [String], failed: Bool) {
    let stats = try parallelMap(adapter.modules.filter { keep($0.name) }) { try ModuleStatistics($0) }
    Session.schema = "fedlora.inspect.adapter/1"
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
    // Modules that could not be read: a row each, flagged with the reason (the run then exits 1).
    let unreadable = adapter.problems.filter { $0.code != "config-rank-mismatch" }.filter { keep($0.module ?? "") }
    for problem in unreadable {
      table.rows.append(
        [.text(problem.module ?? "")] + Array(repeating: .number(nil), count: table.columns.count - 2) + [
          .text("unreadable: \(problem.code)")
        ])
    }
    let flagged = stats.filter { !$0.flags.isEmpty }
    let parameters = adapter.modules.reduce(0) { $0 + $1.a.elementCount + $1.b.elementCount }
    let bytes = adapter.checkpoint.tensors.reduce(0) { $0 + $1.byteCount }
    let config = adapter.config
    let targets = config?.targetModules ?? AdapterConfig.targets(of: adapter.modules.map(\.name))
    let summary: [(key: String, value: JSON)] = [
      ("path", .string(adapter.path)), ("format", .string(adapter.format.rawValue)),
      ("parameters", JSON(parameters)), ("bytes", JSON(bytes)), ("modules", JSON(adapter.modules.count)),
      ("target_modules", .array(targets.map { .string($0) })),
      (
        "config",
        config.map { c in
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
    var lines = [
      "\(adapter.path): \(adapter.format.rawValue) LoRA adapter, \(adapter.modules.count) modules, \(NumberFormat.count(parameters)) parameters, \(NumberFormat.bytes(bytes))",
      "targets: \(targets.joined(separator: ", "))",
    ]
    if let config {
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
    return try emit(
      table, schema: "fedlora.inspect.adapter/1", summary: summary, lines: lines, bar: "norm_sBA", plot: plot,
      failure: failure)
  }

  // MARK: Clients

  private func clients(_ adapters: [Adapter]) throws -> (lines: [String], failed: Bool) {
    Session.schema = "fedlora.inspect.clients/1"
    let heads = try options.llama.heads() ?? QKRowOrder.heads(from: adapters)
    let merged = try options.against.map {
      try QKRowOrder.resolve([Adapter.load($0, alpha: options.alpha, llamaHeads: heads)], heads: heads)[0]
    }
    let weighting = try Audit.weighting(
      given: options.weighting.spec, clients: adapters,
      recorded: merged.flatMap(AdapterWriter.Provenance.init(recordedIn:)),
      auditedPath: options.against ?? "")
    weighting.warnings.forEach(Session.warn)
    let set = try ClientSet(
      adapters, weights: weighting.spec, normalize: weighting.normalize, allowMissing: options.allowMissing,
      allowDifferentBases: options.allowDifferentBases)
    set.warnings.forEach(Session.warn)
    let modules = set.moduleNames.filter(keep)
    // What the audited adapter changes beyond the clients' modules is no part of their aggregate.
    var extra: [String] = []
    if let merged {
      let missing = modules.filter { name in !merged.modules.contains { $0.name == name } }
      if let first = missing.first {
        throw AdapterError.moduleMismatch(
          client: merged.path, module: first, message: "the audited adapter does not adapt it")
      }
      let known = Set(set.moduleNames)
      extra =
        merged.modules.map(\.name).filter { !known.contains($0) && keep($0) }
        + merged.fullTensors.map(\.name).filter { name in !set.fullTensorNames.contains(name) }
      if let first = extra.first {
        Session.warn(
          "\(merged.path) also changes \(extra.count) tensors or modules the clients do not adapt (first: \(first)); the audit does not cover them"
        )
      }
    }
    let rank = options.rank
    let rows = try parallelMap(modules) { module in
      try ModuleComparison(set, module: module, rank: rank, merged: merged?.modules.first { $0.name == module })
    }
    var columns =
      ["module", "d", "k", "norm_T"] + set.clients.indices.map { "cos_\($0 + 1)" } + ["fedavg", "flora_na", "floor"]
    if merged != nil { columns.append("against") }
    var table = ReportTable(columns: columns)
    for row in rows {
      var cells: [ReportTable.Cell] = [
        .text(row.name), .integer(row.shape[0]), .integer(row.shape[1]), .number(row.normT),
      ]
      cells += row.cosines.map { .number($0) }
      cells += [
        .number(row.relative(row.fedavg)), .number(row.relative(row.floraNA)), .number(row.relative(row.floor)),
      ]
      if merged != nil { cells.append(.number(row.relative(row.against))) }
      table.rows.append(cells)
    }
    func model(_ part: (ModuleComparison) -> Double?) -> Double? {
      modelRelativeError(rows.map { (part($0), $0.normT) })
    }
    let totals: [(String, Double?)] =
      [("fedavg", model(\.fedavg)), ("flora_na", model(\.floraNA)), ("floor", model(\.floor))]
      + (merged == nil ? [] : [("against", model { $0.against })])
    func show(_ v: Double?) -> String { v.map { NumberFormat.scientific($0) } ?? "n/a" }
    let source = weighting.source == "recorded" ? " (recorded in \(options.against ?? ""))" : ""
    var lines = [
      "\(set.clients.count) clients, weights \(set.weights.map { NumberFormat.fixed($0, 3) }.joined(separator: ", "))\(source), \(rows.count) layers",
      "model: " + totals.map { "\($0.0) \(show($0.1))" }.joined(separator: ", "),
    ]
    var audit: Audit.Errors?
    if merged != nil, let mine = model({ $0.against }), let fedavg = model(\.fedavg), let floor = model(\.floor) {
      let rounded: [Audit.Rule: Double?] = [
        .fedavg: model { $0.roundedFedavg }, .floraNA: model { $0.roundedFloraNA }, .floor: model { $0.roundedFloor },
      ]
      audit = Audit.Errors(
        against: mine, fedavg: fedavg, floraNA: model(\.floraNA) ?? fedavg, floor: floor,
        rounded: rounded.compactMapValues { $0 })
    }
    let verdict = audit.map { verdictLine($0, path: options.against ?? "") }
    if let verdict { lines.append(verdict) }
    var failure: (code: String, message: String)?
    if options.expect != nil, audit == nil {
      failure = (
        "expectation-unverifiable",
        "\(options.against ?? ""): no model-level error to judge (no layer selected, or T = 0): --expect cannot pass"
      )
      lines.append("EXPECTATION NOT VERIFIABLE: " + (failure?.message ?? ""))
    } else if options.expect != nil, let first = extra.first {
      failure = (
        "expectation-failed",
        "\(options.against ?? ""): changes \(first) (and \(extra.count - 1) more) that no client adapts"
      )
      lines.append("EXPECTATION FAILED: " + (failure?.message ?? ""))
    } else if let expected = options.expect, let audit, !audit.meets(expected) {
      failure = (
        "expectation-failed",
        "\(options.against ?? ""): error \(show(audit.against)) is worse than \(expected.rawValue)'s \(show(audit.error(of: expected))) by more than the tolerance \(show(audit.tolerance(expected)))"
      )
      lines.append("EXPECTATION FAILED: " + (failure?.message ?? ""))
    } else if let expected = options.expect, audit != nil {
      lines.append(
        "expectation met: no worse than \(expected.rawValue) (tolerance \(show(audit?.tolerance(expected))))")
    }
    let summary: [(key: String, value: JSON)] = [
      ("clients", .array(set.clients.map { .string($0.path) })), ("weights", .array(set.weights.map { JSON($0) })),
      ("weights_source", .string(weighting.source)),
      ("against", options.against.map { .string($0) } ?? .null),
      ("model", .object(totals.map { ($0.0, $0.1.map { JSON($0) } ?? .null) })),
      ("verdict", verdict.map { .string($0) } ?? .null),
      ("verdict_code", audit.map { .string($0.verdict.rawValue) } ?? .null),
      (
        "tolerances",
        // JSON keys use underscores (`flora_na`, as in `model`); the rule's name is `flora-na`.
        audit.map { a in
          .object(Audit.Rule.allCases.map { ($0.rawValue.replacingAll("-", "_"), JSON(a.tolerance($0))) })
        } ?? .null
      ),
      ("expect", options.expect.map { .string($0.rawValue) } ?? .null),
      ("expectation_met", options.expect.flatMap { rule in audit.map { .bool($0.meets(rule)) } } ?? .null),
    ]
    var series = [
      SVGPlot.Series(name: "FedAvg", colour: "#d62728", values: rows.map { $0.relative($0.fedavg) }),
      SVGPlot.Series(name: "FLoRA-NA", colour: "#1f77b4", values: rows.map { $0.relative($0.floraNA) }),
      SVGPlot.Series(
        name: "rank-R floor (SVD)", colour: "#2ca02c", values: rows.map { $0.relative($0.floor) }, dashed: true),
    ]
    if merged != nil {
      series.append(
        SVGPlot.Series(name: "audited adapter", colour: "#9467bd", values: rows.map { $0.relative($0.against) }))
    }
    let plot = SVGPlot(
      title: "Relative error per layer against the ideal update (\(set.clients.count) clients)",
      labels: rows.map(\.name), series: series)
    return try emit(
      table, schema: "fedlora.inspect.clients/1", summary: summary, lines: lines, bar: "fedavg", plot: plot,
      failure: failure)
  }

  /// The verdict in words, with the figures it rests on.
  private func verdictLine(_ audit: Audit.Errors, path: String) -> String {
    func show(_ v: Double) -> String { NumberFormat.scientific(v) }
    let figures =
      "error \(show(audit.against)), FedAvg \(show(audit.fedavg)), FLoRA-NA \(show(audit.floraNA)), floor \(show(audit.floor))"
    switch audit.verdict {
    case .asGoodAsFloraNA: return "VERDICT: \(path) is as good as FLoRA-NA or better (\(figures))"
    case .betweenFedAvgAndFloraNA: return "VERDICT: \(path) beats FedAvg but not FLoRA-NA (\(figures))"
    case .noBetterThanFedAvg: return "VERDICT: \(path) is no better than FedAvg (\(figures))"
    case .notAnAggregate:
      return
        "VERDICT: \(path) is not an aggregate of these clients: it is no closer to the ideal update than a zero update (error >= \(NumberFormat.fixed(Audit.notAnAggregateThreshold, 0)); \(figures))"
    }
  }
}
