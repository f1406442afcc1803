import Checkpoints

extension Audit {
  /// Audits `against` (an adapter someone produced) against the `clients` it claims to
  /// aggregate, or, without it, compares the clients with their aggregates: the weights
  /// (given, else recorded, else uniform), the provenance check, each module's comparison, the
  /// model-level errors, the verdict and the `expect` gate.
  ///
  /// - Parameters:
  ///   - adapters: the client adapters, row order resolved.
  ///   - merged: the audited adapter (row order resolved), or nil.
  ///   - options: the weights, rank, expectation and filters.
  ///   - warn: called with each warning as it arises (also those before a thrown error); the
  ///     report lists them too.
  /// - Returns: the report; a failed gate is its ``AuditReport/failure``, not an error.
  /// - Throws: ``AdapterError`` when the clients are no client set, the audited adapter lacks a
  ///   module they adapt or has another shape, a file cannot be read or hashed, or BLAS cannot
  ///   be loaded.
  /// - Complexity: per module compared, the clients' factors read once and the Gram geometry (O(N² (d +
  ///   k)), N = U R), FLoRA-NA's ALS and the rank-R SVD on the Gram blocks; with an audited adapter,
  ///   its factors read once and a few thin products more. Modules run in parallel; with a record
  ///   holding digests, every client's weight file is hashed (O(bytes)).
  public static func run(
    clients adapters: [Adapter], against merged: Adapter?, options: AuditOptions,
    warn: (String) -> Void = { _ in }
  ) throws(AdapterError) -> AuditReport {
    var warnings: [String] = []
    func note(_ message: String) {
      warnings.append(message)
      warn(message)
    }
    let auditedPath = merged?.path ?? ""
    let provenance = try AdapterError.wrap { () throws(CheckpointError) in
      try ProvenanceCheck(
        record: merged.flatMap(AdapterWriter.Provenance.init(recordedIn:)), clients: adapters,
        given: options.weights, expected: options.expect)
    }
    let weighting = weighting(given: options.weights, provenance: provenance, auditedPath: auditedPath)
    weighting.warnings.forEach(note)
    let set = try ClientSet(
      adapters, weights: weighting.spec, normalize: weighting.normalize, allowMissing: options.allowMissing,
      allowDifferentBases: options.allowDifferentBases)
    (set.warnings + [set.rankPaddingWarning].compactMap { $0 }).forEach(note)
    let keep = options.modules
    let modules = set.moduleNames.filter(keep)
    let uncovered =
      try merged.map { m throws(AdapterError) in
        try uncoveredNames(by: set, in: m, modules: modules, keep: keep)
      } ?? []
    if let merged, let first = uncovered.first {
      note(
        "\(merged.path) also changes \(uncovered.count) tensors or modules the clients do not adapt (first: \(first)); the audit does not cover them"
      )
    }
    let rank = options.rank
    let rows = try parallelMap(modules) { module throws(AdapterError) in
      try ModuleComparison(set, module: module, rank: rank, merged: merged?.modules.first { $0.name == module })
    }
    func model(_ part: (ModuleComparison) -> Double?) -> Double? {
      modelRelativeError(rows.map { (part($0), $0.normT) })
    }
    let totals = AuditReport.Totals(
      fedavg: model(\.fedavg), floraNA: model(\.floraNA), floor: model(\.floor),
      against: merged == nil ? nil : model { $0.against })
    var errors: Errors?
    if merged != nil, let mine = totals.against, let fedavg = totals.fedavg, let floor = totals.floor {
      let rounded: [Rule: Double?] = [
        .fedavg: model { $0.roundedFedavg }, .floraNA: model { $0.roundedFloraNA }, .floor: model { $0.roundedFloor },
      ]
      errors = Errors(
        against: mine, fedavg: fedavg, floraNA: totals.floraNA ?? fedavg, floor: floor,
        rounded: rounded.compactMapValues { $0 })
    }
    let failure = options.expect.flatMap { expected in
      gate(errors, expected: expected, provenance: provenance, waived: options.waived, uncovered: uncovered)
    }
    return AuditReport(
      clients: set, auditedPath: merged?.path, weighting: weighting, provenance: provenance, rows: rows,
      totals: totals, errors: errors,
      floorRank: rank ?? set.clients.flatMap { $0.modules.map(\.rank) }.max() ?? 0,
      auditedRank: merged?.modules.filter { keep($0.name) }.map(\.rank).max(), uncovered: uncovered,
      expectation: options.expect, waived: provenance.mismatches.filter(options.waived.contains), failure: failure,
      warnings: warnings)
  }

  /// The tensors and modules the audited adapter changes that no client adapts (the audit does
  /// not cover them); a module the clients adapt and it lacks is an error.
  private static func uncoveredNames(
    by set: ClientSet, in merged: Adapter, modules: [String], keep: (String) -> Bool
  ) throws(AdapterError) -> [String] {
    if let first = modules.first(where: { name in !merged.modules.contains { $0.name == name } }) {
      throw .moduleMismatch(client: merged.path, module: first, message: "the audited adapter does not adapt it")
    }
    let known = Set(set.moduleNames)
    return merged.modules.map(\.name).filter { !known.contains($0) && keep($0) }
      + merged.fullTensors.map(\.name).filter { name in !set.fullTensorNames.contains(name) }
  }

  /// The `expect` gate, in the order an auditor asks: is it judgeable, is it the merge it claims
  /// to be (the clients and weights it records), does it cover only the clients' modules, is it
  /// as close as the rule, is it the rule it records? The first failure.
  private static func gate(
    _ errors: Errors?, expected: Rule, provenance: ProvenanceCheck, waived: Set<ProvenanceCheck.Mismatch>,
    uncovered: [String]
  ) -> AuditReport.Failure? {
    let unwaived = provenance.mismatches.filter { !waived.contains($0) }
    guard let errors else { return .unverifiable }
    if let first = unwaived.first, first != .method { return .provenanceMismatch(first) }
    if let first = uncovered.first { return .uncovered(first: first, count: uncovered.count) }
    if !errors.meets(expected) { return .worseThanExpected(expected) }
    if unwaived.contains(.method) { return .provenanceMismatch(.method) }
    return nil
  }
}
