import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// Number and size formatting shared by the text renderers.
enum NumberFormat {
  /// 1234567 -> "1,234,567".
  static func count(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
      if i > 0, (digits.count - i) % 3 == 0 { out += "," }
      out.append(c)
    }
    return (value < 0 ? "-" : "") + out
  }

  /// Bytes with a binary unit: "13.5 GiB".
  static func bytes(_ value: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var size = Double(value)
    var unit = 0
    while size >= 1024, unit < units.count - 1 {
      size /= 1024
      unit += 1
    }
    return unit == 0 ? "\(value) B" : fixed(size, 1) + " " + units[unit]
  }

  static func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if let dot = text.firstIndex(of: ".") {
      let have = text.distance(from: dot, to: text.endIndex) - 1
      if have < decimals { text += String(repeating: "0", count: decimals - have) }
      if decimals == 0 { text = String(text[..<dot]) }
    }
    return text
  }

  /// Scientific notation with `digits` significant digits: 1.23e-05.
  static func scientific(_ value: Double, _ digits: Int = 3) -> String {
    guard value.isFinite, value != 0 else { return value == 0 ? "0" : "\(value)" }
    var exponent = Int(log10(abs(value)).rounded(.down))
    var mantissa = value / pow10(exponent)
    if abs(mantissa) >= 10 - 0.5 * pow10(1 - digits) {
      exponent += 1
      mantissa /= 10
    }
    let sign = exponent < 0 ? "-" : "+"
    let e = abs(exponent) < 10 ? "0\(abs(exponent))" : "\(abs(exponent))"
    return fixed(mantissa, digits - 1) + "e" + sign + e
  }

  static func shape(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

  /// Parses "4096", "4KB", "1.5GB", "512MiB" into bytes (KB = 1000, KiB = 1024).
  static func parseSize(_ text: String) -> Int? {
    let units: [(String, Double)] = [
      ("KIB", 1024), ("MIB", 1_048_576), ("GIB", 1_073_741_824), ("TIB", 1_099_511_627_776),
      ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("K", 1e3), ("M", 1e6), ("G", 1e9), ("B", 1),
    ]
    let upper = text.uppercased().trimmingSpaces
    for (suffix, factor) in units where upper.hasSuffix(suffix) {
      guard let number = Double(upper.dropLast(suffix.count).trimmingSpaces), number > 0 else { return nil }
      return Int(number * factor)
    }
    return Int(upper).flatMap { $0 > 0 ? $0 : nil }
  }
}

private func pow10(_ n: Int) -> Double { pow(10, Double(n)) }

extension StringProtocol {
  var trimmingSpaces: String {
    String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
  }
}
