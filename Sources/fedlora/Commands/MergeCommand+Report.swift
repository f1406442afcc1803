import Adapters
import Checkpoints

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
