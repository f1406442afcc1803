import Adapters
import Checkpoints

/// `inspect` of adapters: one adapter's layer statistics, or a client set against its aggregates.
struct AdapterReportView {
  let options: InspectCommand
  /// Whether a module is reported (`--filter`).
  let keep: (String) -> Bool

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
  func emit(
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

  /// A figure of the report, `n/a` when there is none.
  static func show(_ value: Double?) -> String { value.map { NumberFormat.scientific($0) } ?? "n/a" }

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
