import Adapters
import Checkpoints

/// The merge summary: per module and model-level relative error against the ideal update.
struct MergeReportView {
  let report: MergeReport
  let output: String
  /// fedex's FedAvg adapter, beside the merged base.
  let adapterOutput: String?
  let set: ClientSet
  /// `--rank`, when given.
  let asked: Int?
  /// The output dtype (nil: a merged base keeps each tensor's) and where it comes from.
  let dtype: (dtype: DType?, source: String)
  /// An adapter output's format and where it came from (nil for a merged base).
  var format: (format: AdapterFormat, source: MergeDestination.FormatSource)? = nil

  var json: [(key: String, value: JSON)] {
    func number(_ value: Double?) -> JSON { value.map { JSON($0) } ?? .null }
    return [
      ("output", .string(output)),
      ("adapter_output", adapterOutput.map { .string($0) } ?? .null),
      ("format", format.map { .string($0.format.rawValue) } ?? .null),
      ("format_source", format.map { .string($0.source.rawValue) } ?? .null),
      ("method", .string(report.method.rawValue)),
      ("rank", asked.map { JSON($0) } ?? .null),
      ("clients", .array(set.clients.map { .string($0.path) })),
      ("weights", .array(set.weights.map { JSON($0) })),
      ("dtype", dtype.dtype.map { .string($0.rawValue) } ?? .null), ("dtype_source", .string(dtype.source)),
      ("model", .object([("relative_error", number(report.modelError)), ("floor", number(report.modelFloor))])),
      (
        "layers",
        .array(
          report.modules.map { module in
            var fields: [(key: String, value: JSON)] = [
              ("name", .string(module.name)), ("shape", .array(module.shape.map { JSON($0) })),
              ("rank", JSON(module.rank)),
              ("norm_T", number(module.normT)), ("relative_error", number(module.relativeError)),
              ("floor", number(module.relativeFloor)),
              ("rank_limit", module.rankLimit.map { .string($0.rawValue) } ?? .null),
            ]
            if let p = module.p, let q = module.q, report.method == .floraNA {
              fields += [
                ("p", .array(p.map { JSON($0) })), ("q", .array(q.map { JSON($0) })),
                ("iterations", module.iterations.map { JSON($0) } ?? .null),
              ]
            }
            return .object(fields)
          })
      ),
    ]
  }

  private var hasErrors: Bool { report.modules.contains { $0.normT != nil } }

  /// The text table's columns (the JSON keys of the layer objects).
  var columns: [String] { ["module", "shape", "rank"] + (hasErrors ? ["norm_T", "relative_error", "floor"] : []) }

  var text: [String] {
    var table = Table(columns.map { ($0, $0 == "module" || $0 == "shape" ? .left : .right) })
    func rel(_ value: Double?) -> String { value.map { NumberFormat.scientific($0) } ?? "n/a" }
    for module in report.modules {
      table.add(
        [module.name, NumberFormat.shape(module.shape), "\(module.rank)"]
          + (hasErrors ? [rel(module.normT), rel(module.relativeError), rel(module.relativeFloor)] : []))
    }
    var lines = ["wrote \(output) (\(report.method.rawValue), \(report.modules.count) layers)"]
    if let adapterOutput { lines.append("wrote the FedAvg adapter to \(adapterOutput): base + adapter = W0 + T") }
    if let format, format.source == .clients || format.format.isForeign {
      lines.append(
        "format: \(format.format.rawValue)\(format.source == .clients ? ", the clients' own" : "") (--format chooses another)"
      )
    }
    lines += table.render()
    let ranks = Set(report.modules.map(\.rank))
    let rankName = ranks.count == 1 ? "rank-\(ranks.first ?? 0)" : "same-rank"
    lines.append(
      hasErrors
        ? "model: relative error \(rel(report.modelError)), floor \(rel(report.modelFloor)) (the best any \(rankName) adapter can do; svd reaches it)"
        : "errors not computed (--no-errors)")
    if dtype.source == ClientSet.DTypeSource.widest.rawValue, let chosen = dtype.dtype {
      lines.append(
        "dtype: \(chosen.rawValue), the narrowest that holds every client's values exactly (the clients are \(set.clientDTypes.map(\.rawValue).joined(separator: ", ")); --dtype chooses another)"
      )
    }
    for limit in [RankLimit.shape, .update] {
      let limited = report.modules.filter { $0.rankLimit == limit }
      guard let first = limited.first, let asked else { continue }
      let why = limit == .shape ? "min(d, k) or the clients' ranks added up" : "the rank of the ideal update T"
      lines.append(
        "note: \(limited.count) layers have rank below --rank \(asked), the most they can hold (\(why)); first: \(first.name.visible), rank \(first.rank)"
      )
    }
    return lines
  }
}
