/// Lookup tables for the 8-bit float formats (256 entries each, built once).
enum FP8Tables {
  static let e4m3 = build(exponentBits: 4, bias: 7, style: .fn)
  static let e5m2 = build(exponentBits: 5, bias: 15, style: .ieee)
  static let e4m3fnuz = build(exponentBits: 4, bias: 8, style: .fnuz)
  static let e5m2fnuz = build(exponentBits: 5, bias: 16, style: .fnuz)
  static let e8m0: [Float] = (0..<256).map { $0 == 255 ? .nan : Float(sign: .plus, exponent: $0 - 127, significand: 1) }

  static func table(for dtype: DType) -> [Float] {
    switch dtype {
    case .f8E4M3: e4m3
    case .f8E5M2: e5m2
    case .f8E4M3FNUZ: e4m3fnuz
    case .f8E5M2FNUZ: e5m2fnuz
    default: e8m0
    }
  }

  /// `ieee`: all-ones exponent is inf/NaN. `fn`: only S.1111.111 is NaN, no infinities.
  /// `fnuz`: 0x80 is the only NaN, no negative zero, no infinities.
  enum Style { case ieee, fn, fnuz }

  static func build(exponentBits: Int, bias: Int, style: Style) -> [Float] {
    let mantissaBits = 7 - exponentBits
    let maxExponent = (1 << exponentBits) - 1
    return (0..<256).map { byte -> Float in
      let negative = byte & 0x80 != 0
      let exponent = (byte >> mantissaBits) & maxExponent
      let mantissa = byte & ((1 << mantissaBits) - 1)
      switch style {
      case .ieee where exponent == maxExponent: return mantissa == 0 ? (negative ? -.infinity : .infinity) : .nan
      case .fn where exponent == maxExponent && mantissa == (1 << mantissaBits) - 1: return .nan
      case .fnuz where byte == 0x80: return .nan
      default: break
      }
      let fraction = Float(mantissa) / Float(1 << mantissaBits)
      let magnitude =
        exponent == 0
        ? Float(sign: .plus, exponent: 1 - bias, significand: fraction)
        : Float(sign: .plus, exponent: exponent - bias, significand: 1 + fraction)
      return negative ? -magnitude : magnitude
    }
  }
}
