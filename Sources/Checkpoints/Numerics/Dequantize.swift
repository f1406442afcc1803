/// Widening of any computable dtype, ggml block types included, and ggml's Q8_0 quantiser.
public enum Dequantize {
  /// Widens all of `values` from the elements of `dtype` in `source` (the checked entry point for other
  /// packages).
  /// - Parameters:
  ///   - source: the raw elements; it must hold at least `values.count` of them (a precondition).
  ///   - dtype: a dtype fedlora computes with (``DType/isComputable``; a precondition).
  ///   - values: where the widened values go.
  /// - Complexity: O(`values.count`).
  public static func widen(
    _ source: UnsafeRawBufferPointer, dtype: DType, into values: UnsafeMutableBufferPointer<Float>
  ) {
    let needed = dtype.byteCount(elements: UInt64(values.count)).map(Int.init) ?? Int.max
    precondition(
      source.count >= needed,
      "widen: \(values.count) \(dtype) values need \(needed) bytes, the source holds \(source.count)")
    guard let destination = values.baseAddress else { return }
    widen(source, dtype: dtype, count: values.count, into: destination)
  }

  /// Widens `count` elements of `dtype` from `source` into `destination` (sizes checked by the caller).
  package static func widen(
    _ source: UnsafeRawBufferPointer, dtype: DType, count: Int, into destination: UnsafeMutablePointer<Float>
  ) {
    guard let base = source.baseAddress else { return }
    switch dtype {
    case .q8_0: q8_0(base, count: count, into: destination)
    case .q4_0: q4_0(base, count: count, into: destination)
    default: FloatConversion.widen(base, dtype: dtype, count: count, into: destination)
    }
  }

  /// Q8_0 block: f16 scale d, then 32 signed bytes q; x = d * q.
  static func q8_0(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
    for block in 0..<(count / 32) {
      let p = source + block * 34
      let scale = half(p)
      for j in 0..<32 { destination[block * 32 + j] = scale * Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) }
    }
  }

  /// Q4_0 block: f16 scale d, then 16 bytes; low nibbles are elements 0..15, high nibbles 16..31;
  /// x = d * (nibble - 8).
  static func q4_0(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
    for block in 0..<(count / 32) {
      let p = source + block * 18
      let scale = half(p)
      for j in 0..<16 {
        let byte = p.load(fromByteOffset: 2 + j, as: UInt8.self)
        destination[block * 32 + j] = scale * Float(Int(byte & 0x0F) - 8)
        destination[block * 32 + j + 16] = scale * Float(Int(byte >> 4) - 8)
      }
    }
  }

  /// Quantises `count` floats (a multiple of 32) to Q8_0 exactly as ggml's reference does:
  /// d = max|x| / 127, q = round(x / d) (half away from zero), d stored as f16.
  package static func quantizeQ8_0(
    _ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer
  ) {
    for block in 0..<(count / 32) {
      let x = source + block * 32
      var amax: Float = 0
      for j in 0..<32 { amax = max(amax, abs(x[j])) }
      let d = amax / 127
      let inverse: Float = d != 0 ? 1 / d : 0
      let out = destination + block * 34
      var scaleBits: UInt16 = 0
      withUnsafePointer(to: d) { FloatConversion.narrow($0, count: 1, to: .f16, into: &scaleBits) }
      out.storeBytes(of: scaleBits.littleEndian, as: UInt16.self)
      for j in 0..<32 {
        let q = (x[j] * inverse).rounded(.toNearestOrAwayFromZero)
        out.storeBytes(of: q.isNaN ? 0 : Int8(max(-127, min(127, q))), toByteOffset: 2 + j, as: Int8.self)
      }
    }
  }

  @inline(__always)
  private static func half(_ p: UnsafeRawPointer) -> Float {
    Float(Float16(bitPattern: UInt16(littleEndian: p.loadUnaligned(as: UInt16.self))))
  }
}
