import CSIMD

/// Vectorised conversions between on-disk float encodings and `Float`.
///
/// Sources and destinations are raw bytes with no alignment assumed (safetensors data may be
/// unaligned). On CPUs with AVX2 and F16C, C kernels (`CSIMD`) convert all but a short tail;
/// elsewhere, and for tails, each element function is branch-free integer arithmetic, so LLVM
/// turns the plain loops into SIMD code (exact for every input).
public enum FloatConversion {
  /// Widens `count` elements of `dtype` read from `source` into `destination`.
  /// Precondition: `dtype.isComputable` and not a ggml block type (see `Dequantize`).
  package static func widen(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>
  ) {
    switch dtype {
    case .f32:
      UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    case .f16:
      for i in csimd_f16_to_f32(source, destination, count)..<count {
        destination[i] = Float(bitPattern: halfToFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
      }
    case .bf16:
      for i in csimd_bf16_to_f32(source, destination, count)..<count {
        destination[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
      }
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
  package static func narrow(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType, into destination: UnsafeMutableRawPointer
  ) {
    switch dtype {
    case .f32:
      destination.copyMemory(from: source, byteCount: count * 4)
    case .bf16:
      for i in csimd_f32_to_bf16(source, destination, count)..<count {
        destination.storeBytes(of: floatToBFloat(source[i].bitPattern), toByteOffset: 2 * i, as: UInt16.self)
      }
    case .f16:
      for i in csimd_f32_to_f16(source, destination, count)..<count {
        destination.storeBytes(of: floatToHalf(source[i].bitPattern), toByteOffset: 2 * i, as: UInt16.self)
      }
    case .f64:
      for i in 0..<count { destination.storeBytes(of: Double(source[i]), toByteOffset: i * 8, as: Double.self) }
    default:
      preconditionFailure("narrow called with \(dtype)")
    }
  }

  /// Rounds `values` once (to nearest, ties to even) to `dtype` into `buffer`.
  /// - Parameters:
  ///   - values: the values.
  ///   - dtype: F32, F16, BF16 or F64 (a precondition).
  ///   - buffer: exactly `values.count` elements of `dtype` (a precondition).
  /// - Complexity: O(`values.count`), vectorised.
  public static func narrow(_ values: [Float], to dtype: DType, into buffer: UnsafeMutableRawBufferPointer) {
    values.withUnsafeBufferPointer { narrow($0, to: dtype, into: buffer) }
  }

  /// Rounds all of `values` once to `dtype` into `buffer`, which must hold exactly that many
  /// elements (the checked entry point for other packages).
  /// - Parameters:
  ///   - values: the values.
  ///   - dtype: F32, F16, BF16 or F64 (a precondition).
  ///   - buffer: exactly `values.count` elements of `dtype` (a precondition).
  /// - Complexity: O(`values.count`), vectorised.
  public static func narrow(
    _ values: UnsafeBufferPointer<Float>, to dtype: DType, into buffer: UnsafeMutableRawBufferPointer
  ) {
    // The buffer must hold what is written: a module solved to another shape than laid out
    // stops here, not past the end of the buffer.
    let needed = dtype.byteCount(elements: UInt64(values.count)).map(Int.init) ?? Int.max
    precondition(
      buffer.count == needed,
      "narrow: \(values.count) \(dtype) values need \(needed) bytes, the buffer holds \(buffer.count)")
    guard let from = values.baseAddress, let to = buffer.baseAddress else { return }
    narrow(from, count: values.count, to: dtype, into: to)
  }

  // MARK: Element functions (branch-free, so the loops below auto-vectorise)

  /// IEEE half -> single, exact for every input including subnormals, infinities and NaN.
  @inline(__always)
  static func halfToFloat(_ h: UInt16) -> UInt32 {
    let bits = UInt32(h)
    let sign = (bits & 0x8000) << 16
    let rebias: UInt32 = (127 - 15) << 23
    let shifted = (bits & 0x7FFF) << 13
    let exponent = shifted & 0x0F80_0000
    var magnitude = shifted &+ rebias
    // Inf/NaN: move the exponent up to all ones.
    magnitude = exponent == 0x0F80_0000 ? magnitude &+ rebias : magnitude
    // Zero/subnormal: renormalise through a float subtraction (exact).
    let renormalised = (Float(bitPattern: magnitude &+ (1 << 23)) - Float(bitPattern: 113 << 23)).bitPattern
    magnitude = exponent == 0 ? renormalised : magnitude
    return magnitude | sign
  }

  /// Single -> bfloat16 with round-to-nearest-even; NaN stays a quiet NaN.
  @inline(__always)
  static func floatToBFloat(_ bits: UInt32) -> UInt16 {
    let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
    let quiet = (bits >> 16) | 0x40
    return UInt16(truncatingIfNeeded: (bits & 0x7FFF_FFFF) > 0x7F80_0000 ? quiet : rounded)
  }

  /// Single -> IEEE half with round-to-nearest-even, subnormals, overflow to infinity, quiet NaN.
  @inline(__always)
  static func floatToHalf(_ bits: UInt32) -> UInt16 {
    let sign = (bits >> 16) & 0x8000
    let magnitude = bits & 0x7FFF_FFFF
    // Normal range: rebias and round to nearest even on the 13 dropped bits.
    let normal = ((magnitude &- ((127 - 15) << 23)) &+ 0x0FFF &+ ((magnitude >> 13) & 1)) >> 13
    // Subnormal range (|x| < 2^-14): adding 0.5 makes the float adder round onto the half's grid.
    let subnormal = (Float(bitPattern: magnitude) + 0.5).bitPattern &- 0x3F00_0000
    var result = magnitude < (113 << 23) ? subnormal : normal
    result = magnitude >= (143 << 23) ? 0x7C00 : result
    result = magnitude > 0x7F80_0000 ? 0x7E00 | ((magnitude >> 13) & 0x3FF) : result
    return UInt16(truncatingIfNeeded: result | sign)
  }
}
