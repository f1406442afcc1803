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
    if adapters.count == 1 && options.against == nil { return try single(adapters[0]) }
    return try Session.under(schema: "fedlora.inspect.clients/1") { try clients(adapters) }
  }

  /// Formats the table and its summary lines (in every format: an auditor needs the verdict
  /// most) and writes the plot. `failure`: a check that failed (the document says `ok: false`,
  /// the command exits 1).
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
    // Summary lines carry names from files: their control characters are shown, not sent.
    let footer =
      lines.map(\.visible) + (options.plot.map { ["wrote \($0)"] } ?? [])
      + (options.explain ? ColumnLegend.lines(for: table.columns + ["bar(\(bar))"]) : [])
    if options.csv { return ([table.csv + footer.map { "# " + $0 + "\n" }.joined()], failure != nil) }
    if options.markdown {
      return ([table.markdown + "\n" + footer.map { "    " + $0 + "\n" }.joined()], failure != nil)
    }
    return (table.text(bar: bar) + [""] + footer, failure != nil)
  }

  // MARK: One adapter

  private func single(_ adapter: Adapter) throws -> (lines: [String], failed: Bool) {
    let stats = try parallelMap(adapter.modules.filter { keep($0.name) }) { try ModuleStatistics($0) }
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
      ("path", .string(adapter.path)), ("format", .string(adapter.sourceFormat.rawValue)),
      ("metadata", .object(adapter.formatMetadata.map { ($0.key, .string($0.value)) })),
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
      "\(adapter.path): \(adapter.sourceFormat.rawValue) LoRA adapter, \(adapter.modules.count) modules, \(NumberFormat.count(parameters)) parameters, \(NumberFormat.bytes(bytes))",
      "targets: \(targets.joined(separator: ", "))",
    ]
    lines += adapter.formatMetadata.map { "metadata: \($0.key) = \($0.value)" }
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
    // The statistics read, the report is the adapter view's: a failure from here on has its schema.
    return try Session.under(schema: "fedlora.inspect.adapter/1") {
      try emit(
        table, schema: "fedlora.inspect.adapter/1", summary: summary, lines: lines, bar: "norm_sBA", plot: plot,
        failure: failure)
    }
  }

  // MARK: Clients

  private func clients(_ adapters: [Adapter]) throws -> (lines: [String], failed: Bool) {
    let heads = try options.llama.heads() ?? QKRowOrder.heads(from: adapters)
    let merged = try options.against.map {
      try QKRowOrder.resolve(
        [Adapter.load($0, alpha: options.alpha, llamaHeads: heads, model: options.llama.model())], heads: heads)[0]
    }
    let report = try Audit.run(
      clients: adapters, against: merged,
      options: AuditOptions(
        weights: options.weighting.spec, rank: options.rank, expect: options.expect, waived: options.waived,
        allowMissing: options.allowMissing, allowDifferentBases: options.allowDifferentBases, modules: keep),
      warn: Session.warn)
    let (set, rows, provenance, audit) = (report.clients, report.rows, report.provenance, report.errors)
    let auditedPath = options.against ?? ""
    var table = ReportTable(
      columns: ["module", "d", "k", "norm_T"] + set.clients.indices.map { "cos_\($0 + 1)" }
        + ["fedavg", "flora_na", "floor"] + (merged == nil ? [] : ["against"]))
    let names = Self.shortNames(set.clients.map(\.path))
    for (i, name) in names.enumerated() { table.labels["cos_\(i + 1)"] = "cos(\(name.visible))" }
    for row in rows {
      table.rows.append(
        [.text(row.name), .integer(row.shape[0]), .integer(row.shape[1]), .number(row.normT)]
          + row.cosines.map { .number($0) }
          + [.number(row.relative(row.fedavg)), .number(row.relative(row.floraNA)), .number(row.relative(row.floor))]
          + (merged == nil ? [] : [.number(row.relative(row.against))]))
    }
    let totals: [(String, Double?)] =
      [("fedavg", report.totals.fedavg), ("flora_na", report.totals.floraNA), ("floor", report.totals.floor)]
      + (merged == nil ? [] : [("against", report.totals.against)])
    let source = report.weighting.source == "recorded" ? " (recorded in \(auditedPath))" : ""
    var lines = [
      "\(set.clients.count) clients, weights \(set.weights.map { NumberFormat.fixed($0, 3) }.joined(separator: ", "))\(source), \(rows.count) layers",
      "model: " + totals.map { "\($0.0) \(Self.show($0.1))" }.joined(separator: ", "),
    ]
    if merged != nil { lines += provenanceLines(provenance, path: auditedPath) }
    let verdict = audit.map {
      verdictLine($0, path: auditedPath, rank: report.floorRank, auditedRank: report.auditedRank)
    }
    if let verdict { lines.append(verdict) }
    let failure = report.failure.map { described($0, report) }
    if let expected = report.expectation {
      if let failure {
        let heading =
          failure.code == "expectation-unverifiable" ? "EXPECTATION NOT VERIFIABLE" : "EXPECTATION FAILED"
        lines.append("\(heading): \(failure.message)")
      } else {
        lines.append(
          "expectation met: no worse than \(expected.rawValue) (tolerance \(Self.show(audit?.tolerance(expected))))"
            + (report.waived.isEmpty ? "" : "; waived: \(report.waived.map(\.rawValue).joined(separator: ", "))"))
      }
    }
    let summary: [(key: String, value: JSON)] = [
      ("clients", .array(set.clients.map { .string($0.path) })), ("client_names", .array(names.map { .string($0) })),
      ("weights", .array(set.weights.map { JSON($0) })),
      ("weights_source", .string(report.weighting.source)),
      ("against", options.against.map { .string($0) } ?? .null),
      ("provenance", merged == nil ? .null : provenanceJSON(provenance)),
      ("model", .object(totals.map { ($0.0, $0.1.map { JSON($0) } ?? .null) })),
      ("verdict", verdict.map { .string($0) } ?? .null),
      ("verdict_code", audit.map { .string($0.verdict.rawValue) } ?? .null),
      (
        "tolerances",
        audit.map { a in .object(Audit.Rule.allCases.map { ($0.jsonKey, JSON(a.tolerance($0))) }) } ?? .null
      ),
      ("expect", options.expect.map { .string($0.rawValue) } ?? .null),
      ("expectation_met", report.expectationMet.map { .bool($0) } ?? .null),
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

  /// The gate's failure in the command's words: its code in the document, the figures it rests
  /// on, and how to waive it.
  private func described(_ kind: AuditReport.Failure, _ report: AuditReport) -> (code: String, message: String) {
    let path = options.against ?? ""
    let failure: (code: String, message: String)
    switch kind {
    case .unverifiable:
      failure = (
        "expectation-unverifiable",
        "\(path): no model-level error to judge (no layer selected, or T = 0): --expect cannot pass"
      )
    case let .provenanceMismatch(mismatch):
      failure = (
        "provenance-mismatch", "\(path): " + mismatchReason(mismatch, report.provenance) + Self.waiveHint(mismatch)
      )
    case let .uncovered(first, count):
      failure = ("expectation-failed", "\(path): changes \(first) (and \(count - 1) more) that no client adapts")
    case let .worseThanExpected(expected):
      let audit = report.errors
      failure = (
        "expectation-failed",
        "\(path): error \(Self.show(audit?.against)) is worse than \(expected.rawValue)'s \(Self.show(audit?.error(of: expected))) by more than the tolerance \(Self.show(audit?.tolerance(expected)))"
      )
    }
    return failure
  }

  private static func waiveHint(_ mismatch: ProvenanceCheck.Mismatch) -> String {
    " (give what was merged, or --waive \(mismatch.rawValue) to judge it anyway)"
  }

  /// One disagreement between the record and what was given, in words.
  private func mismatchReason(_ mismatch: ProvenanceCheck.Mismatch, _ provenance: ProvenanceCheck) -> String {
    switch mismatch {
    case .clients:
      let missing =
        provenance.missing.isEmpty ? [] : ["records clients not given: \(provenance.missing.joined(separator: ", "))"]
      let unknown =
        provenance.unknown.isEmpty ? [] : ["was not made from: \(provenance.unknown.joined(separator: ", "))"]
      return (missing + unknown).joined(separator: "; ")
    case .weights:
      return
        "records weights \((provenance.recordedWeights ?? []).map { NumberFormat.fixed($0, 3) }.joined(separator: ", ")), not the ones given"
    case .method:
      return "records method \(provenance.record?.method ?? "?"), not \(options.expect?.rawValue ?? "?")"
        + " (\(options.expect?.recordedMethods.map(\.rawValue).joined(separator: " or ") ?? "") expected)"
    }
  }

  /// The provenance lines of the text report.
  private func provenanceLines(_ provenance: ProvenanceCheck, path: String) -> [String] {
    guard let record = provenance.record else {
      return ["provenance: \(path) records none (not written by fedlora): judged on its numbers only"]
    }
    var line =
      "provenance: \(path) records \(record.method)\(record.rank.map { " --rank \($0)" } ?? ""), \(record.clients.count) clients; \(provenance.matched.count) given match"
    if !provenance.missing.isEmpty { line += ", missing: \(provenance.missing.joined(separator: ", "))" }
    if !provenance.unknown.isEmpty { line += ", not in the record: \(provenance.unknown.joined(separator: ", "))" }
    if provenance.weightsMatch == false { line += ", weights differ" }
    if provenance.methodMatches == false { line += ", method is not \(options.expect?.rawValue ?? "")'s" }
    return [line]
  }

  private func provenanceJSON(_ provenance: ProvenanceCheck) -> JSON {
    func strings(_ values: [String]) -> JSON { .array(values.map { .string($0) }) }
    func bool(_ value: Bool?) -> JSON { value.map { .bool($0) } ?? .null }
    let record = provenance.record
    return .object([
      ("recorded", .bool(record != nil)), ("method", record.map { .string($0.method) } ?? .null),
      ("rank", record?.rank.map { JSON($0) } ?? .null),
      ("version", record.map { .string($0.version) } ?? .null), ("clients", strings(record?.clients ?? [])),
      ("matched", strings(provenance.matched)), ("missing", strings(provenance.missing)),
      ("unknown", strings(provenance.unknown)),
      ("weights_recorded", record.map { .array($0.weights.map { JSON($0) }) } ?? .null),
      ("weights_match", bool(provenance.weightsMatch)), ("method_matches", bool(provenance.methodMatches)),
      ("mismatches", strings(provenance.mismatches.map(\.rawValue))),
      ("waived", strings(provenance.mismatches.filter(options.waived.contains).map(\.rawValue))),
    ])
  }

  /// The verdict in words, with the figures it rests on.
  private func verdictLine(_ audit: Audit.Errors, path: String, rank: Int, auditedRank: Int?) -> String {
    func show(_ v: Double) -> String { NumberFormat.scientific(v) }
    let figures =
      "error \(show(audit.against)), FedAvg \(show(audit.fedavg)), FLoRA-NA \(show(audit.floraNA)), floor \(show(audit.floor))"
    switch audit.verdict {
    case .optimalAtRank:
      let higher = (auditedRank ?? 0) > rank ? "; it has rank \(auditedRank ?? 0), more than \(rank)" : ""
      return
        "VERDICT: \(path) is optimal at rank \(rank): it reaches the floor, the best any rank-\(rank) adapter can do (\(figures)\(higher))"
    case .asGoodAsFloraNA: return "VERDICT: \(path) is as good as FLoRA-NA or better (\(figures))"
    case .betweenFedAvgAndFloraNA: return "VERDICT: \(path) beats FedAvg but not FLoRA-NA (\(figures))"
    case .noBetterThanFedAvg: return "VERDICT: \(path) is no better than FedAvg (\(figures))"
    case .notAnAggregate:
      return
        "VERDICT: \(path) is not an aggregate of these clients: it is no closer to the ideal update than a zero update (error >= \(NumberFormat.fixed(Audit.notAnAggregateThreshold, 0)); \(figures))"
    }
  }

  private static func show(_ value: Double?) -> String { value.map { NumberFormat.scientific($0) } ?? "n/a" }

  /// Short, distinct names for the clients' columns: the last path component, or more of the
  /// path where two clients share it.
  static func shortNames(_ paths: [String]) -> [String] {
    let components = paths.map { trimmingTrailingSlashes($0).split(separator: "/").map(String.init) }
    var depth = 1
    while depth < (components.map(\.count).max() ?? 1) {
      let names = components.map { $0.suffix(depth).joined(separator: "/") }
      if Set(names).count == names.count { return names }
      depth += 1
    }
    return components.map { $0.joined(separator: "/") }
  }
}
