import ArgumentParser
import Checkpoints

/// A per-layer report as data, rendered as an aligned table, CSV, Markdown or JSON rows.
struct ReportTable {
  enum Cell {
    case text(String)
    case number(Double?)
    case integer(Int?)

    var json: JSON {
      switch self {
      case let .text(s): .string(s)
      // JSON has no NaN or infinity: a non-finite number is null (the nan and inf columns count them).
      case let .number(v): v.flatMap { $0.isFinite ? JSON($0) : nil } ?? .null
      case let .integer(v): v.map { JSON($0) } ?? .null
      }
    }

    var plain: String {
      switch self {
      case let .text(s): s
      case let .number(v): v.map { "\($0)" } ?? ""
      case let .integer(v): v.map(String.init) ?? ""
      }
    }

    var display: String {
      switch self {
      case let .text(s): s
      case let .number(v): v.map { NumberFormat.scientific($0) } ?? "n/a"
      case let .integer(v): v.map(String.init) ?? "n/a"
      }
    }

    var sortKey: Double? {
      switch self {
      case .text: nil
      case let .number(v): v
      case let .integer(v): v.map(Double.init)
      }
    }
  }

  var columns: [String]
  var rows: [[Cell]] = []
  /// Headers the text and Markdown tables show instead of a column's key (`cos_1` -> `cos(client_a)`);
  /// JSON and CSV keep the keys.
  var labels: [String: String] = [:]

  private func label(_ column: String) -> String { labels[column] ?? column }

  /// Sorts by `column`: numbers largest first (worst layers on top), text alphabetically.
  mutating func sort(by column: String) throws {
    guard let index = columns.firstIndex(of: column) else {
      throw ValidationError("no column '\(column)'; columns: \(columns.joined(separator: ", "))")
    }
    rows.sort { a, b in
      switch (a[index].sortKey, b[index].sortKey) {
      case let (x?, y?): x > y
      case (nil, _?): false
      case (_?, nil): true
      default: a[index].plain < b[index].plain
      }
    }
  }

  func text(bar column: String? = nil) -> [String] {
    var table = Table(
      columns.map { (label($0), $0 == columns.first ? .left : .right) }
        + (column.map { [("bar(\($0))", .left)] } ?? []))
    let barIndex = column.flatMap { columns.firstIndex(of: $0) }
    let largest = barIndex.map { i in rows.compactMap { $0[i].sortKey }.max() ?? 0 } ?? 0
    for row in rows {
      var cells = row.map(\.display)
      if let barIndex {
        let value = row[barIndex].sortKey ?? 0
        cells.append(Self.bar(largest > 0 ? value / largest : 0))
      }
      table.add(cells)
    }
    return table.render()
  }

  /// A bar of eighths, up to 12 characters wide.
  static func bar(_ fraction: Double) -> String {
    let eighths = Int((max(0, min(1, fraction)) * 96).rounded())
    let blocks = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"]
    return String(repeating: "█", count: eighths / 8) + blocks[eighths % 8]
  }

  var csv: String {
    func quote(_ s: String) -> String {
      s.contains(",") || s.contains("\"") ? "\"" + s.replacingAll("\"", "\"\"") + "\"" : s
    }
    return
      ([columns.map(quote).joined(separator: ",")]
      + rows.map { $0.map { quote($0.plain.visible) }.joined(separator: ",") }).joined(separator: "\n") + "\n"
  }

  var markdown: String {
    let header = "| " + columns.map(label).joined(separator: " | ") + " |"
    let rule = "|" + columns.enumerated().map { $0.offset == 0 ? "---|" : "---:|" }.joined()
    return ([header, rule] + rows.map { "| " + $0.map(\.display.visible).joined(separator: " | ") + " |" }).joined(
      separator: "\n") + "\n"
  }

  var json: JSON {
    .array(rows.map { row in .object(zip(columns, row).map { ($0, $1.json) }) })
  }
}

extension String {
  func replacingAll(_ target: String, _ replacement: String) -> String {
    split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
  }
}
