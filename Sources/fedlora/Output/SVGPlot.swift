import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// A line plot of per-layer relative errors, one series per rule, on a log scale.
struct SVGPlot {
  struct Series {
    let name: String
    let colour: String
    let values: [Double?]
    var dashed = false
  }

  let title: String
  let labels: [String]
  let series: [Series]

  var svg: String {
    let (width, height) = (960.0, 600.0)
    let (left, right, top, bottom) = (80.0, 200.0, 50.0, 190.0)
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let positive = series.flatMap { $0.values.compactMap { $0 } }.filter { $0 > 0 }
    let low = floor(log10(positive.min() ?? 1e-3)), high = ceil(log10(positive.max() ?? 1))
    let span = max(high - low, 1)
    func x(_ i: Int) -> Double { left + (labels.count > 1 ? Double(i) / Double(labels.count - 1) : 0.5) * plotWidth }
    func y(_ v: Double) -> Double { top + (1 - (log10(v) - low) / span) * plotHeight }

    let prefix = Self.commonPrefix(labels)
    var out = """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
      <rect width="100%" height="100%" fill="white"/>
      <text x="\(left)" y="28" font-size="16" font-weight="bold">\(escape(title))</text>

      """
    // Grid and y axis: one line per decade.
    for decade in Int(low)...Int(high) {
      let yy = y(pow(10, Double(decade)))
      out += "<line x1=\"\(left)\" y1=\"\(r(yy))\" x2=\"\(left + plotWidth)\" y2=\"\(r(yy))\" stroke=\"#ddd\"/>\n"
      out += "<text x=\"\(left - 8)\" y=\"\(r(yy + 4))\" text-anchor=\"end\">1e\(decade)</text>\n"
    }
    out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
    out +=
      "<line x1=\"\(left)\" y1=\"\(top + plotHeight)\" x2=\"\(left + plotWidth)\" y2=\"\(top + plotHeight)\" stroke=\"black\"/>\n"
    out +=
      "<text transform=\"translate(20 \(r(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">relative error ||T - BhAh|| / ||T|| (log)</text>\n"
    out +=
      "<text x=\"\(r(left + plotWidth / 2))\" y=\"\(r(height - 12))\" text-anchor=\"middle\">module\(prefix.isEmpty ? "" : " (" + escape(prefix) + "...)") in report order, \(labels.count) adapted weights</text>\n"
    // X ticks: at most ~32, each named by its module (slanted, without the common prefix).
    let step = max(1, (labels.count + 31) / 32)
    for i in stride(from: 0, to: labels.count, by: step) {
      let (tx, ty) = (r(x(i)), r(top + plotHeight + 14))
      out +=
        "<line x1=\"\(tx)\" y1=\"\(top + plotHeight)\" x2=\"\(tx)\" y2=\"\(top + plotHeight + 5)\" stroke=\"black\"/>\n"
      out +=
        "<text x=\"\(tx)\" y=\"\(ty)\" font-size=\"10\" text-anchor=\"end\" transform=\"rotate(-40 \(tx) \(ty))\">\(escape(String(labels[i].dropFirst(prefix.count))))</text>\n"
    }
    for (index, s) in series.enumerated() {
      let points = s.values.enumerated().compactMap { i, v in v.flatMap { $0 > 0 ? "\(r(x(i))),\(r(y($0)))" : nil } }
      let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
      out +=
        "<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(dash) points=\"\(points.joined(separator: " "))\"><title>\(escape(s.name))</title></polyline>\n"
      for (i, v) in s.values.enumerated() {
        if let v, v > 0 {
          out +=
            "<circle cx=\"\(r(x(i)))\" cy=\"\(r(y(v)))\" r=\"2.5\" fill=\"\(s.colour)\" data-series=\"\(escape(s.name))\" data-value=\"\(v)\"><title>\(escape(labels[i])): \(v)</title></circle>\n"
        }
      }
      let ly = top + 20 + Double(index) * 22
      out +=
        "<line x1=\"\(left + plotWidth + 20)\" y1=\"\(r(ly))\" x2=\"\(left + plotWidth + 50)\" y2=\"\(r(ly))\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(dash)/>\n"
      out += "<text x=\"\(left + plotWidth + 58)\" y=\"\(r(ly + 4))\">\(escape(s.name))</text>\n"
    }
    return out + "</svg>\n"
  }

  private func r(_ v: Double) -> String { NumberFormat.fixed(v, 1) }

  /// The leading dot-separated parts every label shares ("model.layers."), shown once in no label.
  static func commonPrefix(_ labels: [String]) -> String {
    guard var prefix = labels.first, labels.count > 1 else { return "" }
    for label in labels.dropFirst() { while !label.hasPrefix(prefix) { prefix.removeLast() } }
    return String(prefix[..<(prefix.lastIndex(of: ".").map { prefix.index(after: $0) } ?? prefix.startIndex)])
  }

  private func escape(_ text: String) -> String {
    text.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;").replacingAll("\"", "&quot;")
  }
}
