/// A plain aligned text table: left-aligned text columns, right-aligned numeric ones.
struct Table {
  enum Alignment { case left, right }

  var headers: [String]
  var alignments: [Alignment]
  var rows: [[String]] = []

  init(_ columns: [(String, Alignment)]) {
    headers = columns.map(\.0)
    alignments = columns.map(\.1)
  }

  /// Adds a row; its cells' control characters are shown, not sent (names come from files).
  mutating func add(_ row: [String]) { rows.append(row.map(\.visible)) }

  /// The table as lines, columns separated by two spaces, header underlined with dashes.
  func render(indent: String = "") -> [String] {
    var widths = headers.map(\.count)
    for row in rows {
      for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], visibleWidth(cell)) }
    }
    func line(_ cells: [String]) -> String {
      var parts: [String] = []
      for (i, cell) in cells.enumerated() {
        let pad = String(repeating: " ", count: max(0, widths[i] - visibleWidth(cell)))
        let isLast = i == cells.count - 1
        parts.append(alignments[i] == .right ? pad + cell : (isLast ? cell : cell + pad))
      }
      return indent + parts.joined(separator: "  ")
    }
    return [line(headers), line(widths.map { String(repeating: "-", count: $0) })] + rows.map(line)
  }

  /// Width on screen: escape sequences take none.
  private func visibleWidth(_ text: String) -> Int {
    var width = 0
    var inEscape = false
    for scalar in text.unicodeScalars {
      if scalar == "\u{1B}" {
        inEscape = true
      } else if inEscape {
        if scalar == "m" { inEscape = false }
      } else {
        width += 1
      }
    }
    return width
  }
}
