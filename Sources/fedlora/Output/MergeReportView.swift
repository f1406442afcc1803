import Adapters
import Checkpoints

/// The merge summary: per module and model-level relative error against the ideal update.
enum MergeReportView {
  static func json(_ report: MergeReport, output: String, adapterOutput: String?, set: ClientSet, asked: Int?) -> [(
    key: String, value: JSON
  )] {
    func number(_ value: Double?) -> JSON { value.map { JSON($0) } ?? .null }
    return [
      ("output", .string(output)),
      ("adapter_output", adapterOutput.map { .string($0) } ?? .null),
      ("method", .string(report.method.rawValue)),
      ("rank", asked.map { JSON($0) } ?? .null),
      ("clients", .array(set.clients.map { .string($0.path) })),
      ("weights", .array(set.weights.map { JSON($0) })),
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

  static func text(_ report: MergeReport, output: String, adapterOutput: String?, asked: Int?) -> [String] {
    let errors = report.modules.contains { $0.normT != nil }
    var table = Table(
      [("module", .left), ("shape", .left), ("rank", .right)]
        + (errors ? [("||T||", .right), ("error", .right), ("floor", .right)] : []))
    func rel(_ value: Double?) -> String { value.map { NumberFormat.scientific($0) } ?? "n/a" }
    for module in report.modules {
      table.add(
        [module.name, NumberFormat.shape(module.shape), "\(module.rank)"]
          + (errors ? [rel(module.normT), rel(module.relativeError), rel(module.relativeFloor)] : []))
    }
    var lines = ["wrote \(output) (\(report.method.rawValue), \(report.modules.count) layers)"]
    if let adapterOutput { lines.append("wrote the FedAvg adapter to \(adapterOutput): base + adapter = W0 + T") }
    lines += table.render()
    lines.append(
      errors
        ? "model: relative error \(rel(report.modelError)), rank-R floor \(rel(report.modelFloor))"
        : "errors not computed (--no-errors)")
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
