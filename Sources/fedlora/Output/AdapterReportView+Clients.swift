import Adapters
import Checkpoints

extension AdapterReportView {
  /// `inspect CLIENT... [--against MERGED]`: the library's audit of the clients (and of the
  /// merged adapter), each module's errors beside the floor, the provenance, the verdict and the
  /// `--expect` gate; failed when the gate fails.
  func clients(_ adapters: [Adapter]) throws -> (lines: [String], failed: Bool) {
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
    let audited = merged != nil
    let names = Self.shortNames(report.clients.clients.map(\.path))
    let totals: [(String, Double?)] =
      [("fedavg", report.totals.fedavg), ("flora_na", report.totals.floraNA), ("floor", report.totals.floor)]
      + (audited ? [("against", report.totals.against)] : [])
    let verdict = report.errors.map {
      verdictLine($0, path: options.against ?? "", rank: report.floorRank, auditedRank: report.auditedRank)
    }
    let failure = report.failure.map { described($0, report) }
    return try emit(
      errorTable(report, names: names, audited: audited), schema: "fedlora.inspect.clients/1",
      summary: summary(report, names: names, totals: totals, verdict: verdict, audited: audited),
      lines: lines(report, totals: totals, verdict: verdict, failure: failure, audited: audited), bar: "fedavg",
      plot: errorPlot(report, audited: audited), failure: failure)
  }

  /// A row per module: its shape, `||T||`, each client's cosine with the ideal update, and the
  /// relative errors of FedAvg, FLoRA-NA, the floor (and the audited adapter).
  private func errorTable(_ report: AuditReport, names: [String], audited: Bool) -> ReportTable {
    let set = report.clients
    var table = ReportTable(
      columns: ["module", "d", "k", "norm_T"] + set.clients.indices.map { "cos_\($0 + 1)" }
        + ["fedavg", "flora_na", "floor"] + (audited ? ["against"] : []))
    for (i, name) in names.enumerated() { table.labels["cos_\(i + 1)"] = "cos(\(name.visible))" }
    for row in report.rows {
      table.rows.append(
        [.text(row.name), .integer(row.shape[0]), .integer(row.shape[1]), .number(row.normT)]
          + row.cosines.map { .number($0) }
          + [.number(row.relative(row.fedavg)), .number(row.relative(row.floraNA)), .number(row.relative(row.floor))]
          + (audited ? [.number(row.relative(row.against))] : []))
    }
    return table
  }

  /// The text report's lines below the table: the clients and weights, the model-level errors,
  /// the provenance, the verdict and the gate's outcome.
  private func lines(
    _ report: AuditReport, totals: [(String, Double?)], verdict: String?,
    failure: (code: String, message: String)?, audited: Bool
  ) -> [String] {
    let (set, auditedPath) = (report.clients, options.against ?? "")
    let source = report.weighting.source == "recorded" ? " (recorded in \(auditedPath))" : ""
    var lines = [
      "\(set.clients.count) clients, weights \(set.weights.map { NumberFormat.fixed($0, 3) }.joined(separator: ", "))\(source), \(report.rows.count) layers",
      "model: " + totals.map { "\($0.0) \(Self.show($0.1))" }.joined(separator: ", "),
    ]
    if audited { lines += provenanceLines(report.provenance, path: auditedPath) }
    if let verdict { lines.append(verdict) }
    if let expected = report.expectation {
      if let failure {
        let heading =
          failure.code == "expectation-unverifiable" ? "EXPECTATION NOT VERIFIABLE" : "EXPECTATION FAILED"
        lines.append("\(heading): \(failure.message)")
      } else {
        lines.append(
          "expectation met: no worse than \(expected.rawValue) (tolerance \(Self.show(report.errors?.tolerance(expected))))"
            + (report.waived.isEmpty ? "" : "; waived: \(report.waived.map(\.rawValue).joined(separator: ", "))"))
      }
    }
    return lines
  }

  /// The document's fields beside the table: clients, weights, provenance, model-level errors,
  /// verdict, tolerances and the gate.
  private func summary(
    _ report: AuditReport, names: [String], totals: [(String, Double?)], verdict: String?, audited: Bool
  ) -> [(key: String, value: JSON)] {
    let (set, audit) = (report.clients, report.errors)
    return [
      ("clients", .array(set.clients.map { .string($0.path) })), ("client_names", .array(names.map { .string($0) })),
      ("weights", .array(set.weights.map { JSON($0) })),
      ("weights_source", .string(report.weighting.source)),
      ("against", options.against.map { .string($0) } ?? .null),
      ("provenance", audited ? provenanceJSON(report.provenance) : .null),
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
  }

  /// The relative error per layer of FedAvg, FLoRA-NA, the floor (and the audited adapter).
  private func errorPlot(_ report: AuditReport, audited: Bool) -> SVGPlot {
    let rows = report.rows
    var series = [
      SVGPlot.Series(name: "FedAvg", colour: "#d62728", values: rows.map { $0.relative($0.fedavg) }),
      SVGPlot.Series(name: "FLoRA-NA", colour: "#1f77b4", values: rows.map { $0.relative($0.floraNA) }),
      SVGPlot.Series(
        name: "rank-R floor (SVD)", colour: "#2ca02c", values: rows.map { $0.relative($0.floor) }, dashed: true),
    ]
    if audited {
      series.append(
        SVGPlot.Series(name: "audited adapter", colour: "#9467bd", values: rows.map { $0.relative($0.against) }))
    }
    return SVGPlot(
      title: "Relative error per layer against the ideal update (\(report.clients.clients.count) clients)",
      labels: rows.map(\.name), series: series)
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
}
