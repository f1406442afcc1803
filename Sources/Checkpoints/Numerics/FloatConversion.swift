/// Vectorised conversions between on-disk float encodings and `Float`.
///
/// Sources and destinations are raw bytes with no alignment assumed (safetensors data may be
/// unaligned). Each loop works on 16 lanes at a time with integer bit operations, so it compiles
/// to SIMD code without needing F16C; tails go through the same lane function, zero-padded.
public enum FloatConversion {
  typealias Lanes = SIMD16<UInt32>
  static let width = 16

  /// Widens `count` elements of `dtype` read from `source` into `destination`.
  /// Precondition: `dtype.isComputable` and not a ggml block type (see `Dequantize`).
  public static func widen(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>
  ) {
    switch dtype {
    case .f32:
      UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    case .f16:
      map16(source, count, destination) { halfToFloat($0) }
    case .bf16:
      map16(source, count, destination) { Lanes(truncatingIfNeeded: $0) &<< 16 }
    case .f64:
      for i in 0..<count {
        destination[i] = Float(source.loadUnaligned(fromByteOffset: i * 8, as: Double.self))
      }
    case .f8E4M3, .f8E5M2, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ:
      let table = FP8Tables.table(for: dtype)
      table.withUnsafeBufferPointer { lookup in
        for i in 0..<count { destination[i] = lookup[Int(source.load(fromByteOffset: i, as: UInt8.self))] }
      }
    default:
      preconditionFailure("widen called with \(dtype)")
    }
  }

  /// Rounds `count` floats from `source` to `dtype` (F16, BF16, F32 or F64) into `destination`:
  /// round-to-nearest-even, NaN kept NaN (and quiet), overflow to infinity.
  public static func narrow(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType, into destination: UnsafeMutableRawPointer
  ) {
    switch dtype {
    case .f32:
      destination.copyMemory(from: source, byteCount: count * 4)
    case .bf16:
      mapFloats(source, count, destination) { floatToBFloat($0) }
    case .f16:
      mapFloats(source, count, destination) { floatToHalf($0) }
    case .f64:
      for i in 0..<count { destination.storeBytes(of: Double(source[i]), toByteOffset: i * 8, as: Double.self) }
    default:
      preconditionFailure("narrow called with \(dtype)")
    }
  }

  // MARK: Lane functions (16 values at a time)

  /// IEEE half -> single, exact for every input including subnormals, infinities and NaN.
  @inline(__always)
  static func halfToFloat(_ h: SIMD16<UInt16>) -> Lanes {
    let bits = Lanes(truncatingIfNeeded: h)
    let sign: Lanes = (bits & 0x8000) &<< 16
    var magnitude: Lanes = (bits & 0x7FFF) &<< 13
    let exponent: Lanes = magnitude & 0x0F80_0000
    let rebias: UInt32 = (127 - 15) << 23
    magnitude &+= rebias
    // Inf/NaN: move the exponent up to all ones.
    magnitude.replace(with: magnitude &+ rebias, where: exponent .== 0x0F80_0000)
    // Zero/subnormal: renormalise through a float subtraction (exact).
    let isSmall = exponent .== 0
    if any(isSmall) {
      let shifted: Lanes = magnitude &+ (1 << 23)
      let smallest = SIMD16<Float>(repeating: Float(bitPattern: 113 << 23))
      let adjusted: SIMD16<Float> = asFloats(shifted) - smallest
      magnitude.replace(with: asBits(adjusted), where: isSmall)
    }
    return magnitude | sign
  }

  /// Single -> bfloat16 with round-to-nearest-even; NaN stays a quiet NaN.
  @inline(__always)
  static func floatToBFloat(_ bits: Lanes) -> SIMD16<UInt16> {
    let isNaN = (bits & 0x7FFF_FFFF) .> 0x7F80_0000
    let lsb: Lanes = (bits &>> 16) & 1
    let rounded: Lanes = (bits &+ 0x7FFF &+ lsb) &>> 16
    let quiet: Lanes = (bits &>> 16) | 0x40
    return SIMD16<UInt16>(truncatingIfNeeded: rounded.replacing(with: quiet, where: isNaN))
  }

  /// Single -> IEEE half with round-to-nearest-even, subnormals, overflow to infinity, quiet NaN.
  @inline(__always)
  static func floatToHalf(_ bits: Lanes) -> SIMD16<UInt16> {
    let sign: Lanes = (bits &>> 16) & 0x8000
    let magnitude: Lanes = bits & 0x7FFF_FFFF
    // Normal range: rebias and round to nearest even on the 13 dropped bits.
    let rebias: UInt32 = (127 - 15) << 23
    let lsb: Lanes = (magnitude &>> 13) & 1
    let normal: Lanes = ((magnitude &- rebias) &+ 0x0FFF &+ lsb) &>> 13
    // Subnormal range (|x| < 2^-14): adding 0.5 makes the float adder round onto the half's grid.
    let half = SIMD16<Float>(repeating: 0.5)
    let sub: Lanes = asBits(asFloats(magnitude) + half) &- 0x3F00_0000
    let smallestNormal: UInt32 = 113 << 23
    let overflow: UInt32 = 143 << 23
    let payload: Lanes = (magnitude &>> 13) & 0x3FF
    var result = normal
    result.replace(with: sub, where: magnitude .< smallestNormal)
    result.replace(with: Lanes(repeating: 0x7C00), where: magnitude .>= overflow)
    result.replace(with: payload | 0x7E00, where: magnitude .> 0x7F80_0000)
    return SIMD16<UInt16>(truncatingIfNeeded: result | sign)
  }

  @inline(__always) static func asFloats(_ bits: Lanes) -> SIMD16<Float> { unsafeBitCast(bits, to: SIMD16<Float>.self) }
  @inline(__always) static func asBits(_ floats: SIMD16<Float>) -> Lanes { unsafeBitCast(floats, to: Lanes.self) }

  // MARK: Loops

  @inline(__always)
  private static func map16(
    _ source: UnsafeRawPointer, _ count: Int, _ destination: UnsafeMutablePointer<Float>,
    _ lane: (SIMD16<UInt16>) -> Lanes
  ) {
    let out = UnsafeMutableRawPointer(destination)
    var i = 0
    while i + width <= count {
      let input = source.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
      out.storeBytes(of: lane(input), toByteOffset: i * 4, as: Lanes.self)
      i += width
    }
    if i < count {
      var input = SIMD16<UInt16>()
      for j in 0..<(count - i) { input[j] = source.loadUnaligned(fromByteOffset: (i + j) * 2, as: UInt16.self) }
      let result = lane(input)
      for j in 0..<(count - i) { destination[i + j] = Float(bitPattern: result[j]) }
    }
  }

  @inline(__always)
  private static func mapFloats(
    _ source: UnsafePointer<Float>, _ count: Int, _ destination: UnsafeMutableRawPointer,
    _ lane: (Lanes) -> SIMD16<UInt16>
  ) {
    let input = UnsafeRawPointer(source)
    var i = 0
    while i + width <= count {
      let bits = input.loadUnaligned(fromByteOffset: i * 4, as: Lanes.self)
      destination.storeBytes(of: lane(bits), toByteOffset: i * 2, as: SIMD16<UInt16>.self)
      i += width
    }
    if i < count {
      var bits = Lanes()
      for j in 0..<(count - i) { bits[j] = source[i + j].bitPattern }
      let result = lane(bits)
      for j in 0..<(count - i) { destination.storeBytes(of: result[j], toByteOffset: (i + j) * 2, as: UInt16.self) }
    }
  }
}

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
      let magnitude = exponent == 0
        ? Float(sign: .plus, exponent: 1 - bias, significand: fraction)
        : Float(sign: .plus, exponent: exponent - bias, significand: 1 + fraction)
      return negative ? -magnitude : magnitude
    }
  }
}
