import TestSupport
import Testing

@testable import Checkpoints

@Suite("Float conversions")
struct FloatConversionTests {
  @Test("F16 -> F32 is exact for all 65,536 bit patterns")
  func halfToFloatExhaustive() {
    let all = (0...UInt16.max).map { $0 }
    var out = [Float](repeating: 0, count: all.count)
    all.withUnsafeBytes { source in
      out.withUnsafeMutableBufferPointer {
        FloatConversion.widen(source.baseAddress!, dtype: .f16, count: all.count, into: $0.baseAddress!)
      }
    }
    for (bits, value) in zip(all, out) {
      let expected = Float(Float16(bitPattern: bits))
      #expect(value.bitPattern == expected.bitPattern || (value.isNaN && expected.isNaN), "bits \(bits)")
    }
  }

  @Test("F32 -> F16 rounds to nearest even like the hardware conversion")
  func floatToHalf() {
    var generator = SeededGenerator(seed: 7)
    var inputs: [Float] = [
      0, -0, 1, -1, 65504, 65519.99, 65520, 65536, 1e-8, 5.96e-8, 2.98e-8, 2.9802322e-8, 6.1e-5, .infinity, -.infinity,
      .nan, .ulpOfOne, 3.14159,
    ]
    for _ in 0..<200_000 { inputs.append(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))) }
    var out = [UInt16](repeating: 0, count: inputs.count)
    inputs.withUnsafeBufferPointer { source in
      out.withUnsafeMutableBytes {
        FloatConversion.narrow(source.baseAddress!, count: inputs.count, to: .f16, into: $0.baseAddress!)
      }
    }
    for (input, bits) in zip(inputs, out) {
      let expected = Float16(input)
      if input.isNaN {
        #expect(Float16(bitPattern: bits).isNaN && bits & 0x0200 != 0, "NaN stays a quiet NaN")
      } else {
        #expect(bits == expected.bitPattern, "input \(input) (\(input.bitPattern))")
      }
    }
  }

  @Test("BF16 round trip: widening is exact, narrowing rounds to nearest even and keeps NaN quiet")
  func bfloat() {
    // 1 + 2^-8 is exactly halfway between two bf16 values: ties go to the even one (1.0).
    let cases: [(Float, UInt16)] = [
      (1, 0x3F80), (1 + 0x1p-8, 0x3F80), (1 + 0x1p-7 + 0x1p-8, 0x3F82), (1 + 0x1p-8 + 0x1p-20, 0x3F81),
      (-2, 0xC000), (.infinity, 0x7F80), (-.infinity, 0xFF80), (Float.greatestFiniteMagnitude, 0x7F80),
      (Float(bitPattern: 0x7F80_0001), 0x7FC0),  // signalling NaN becomes quiet
    ]
    let inputs = cases.map(\.0)
    var out = [UInt16](repeating: 0, count: inputs.count)
    inputs.withUnsafeBufferPointer { source in
      out.withUnsafeMutableBytes {
        FloatConversion.narrow(source.baseAddress!, count: inputs.count, to: .bf16, into: $0.baseAddress!)
      }
    }
    for ((input, expected), bits) in zip(cases, out) { #expect(bits == expected, "input \(input)") }

    let all = (0...UInt16.max).map { $0 }
    var widened = [Float](repeating: 0, count: all.count)
    all.withUnsafeBytes { source in
      widened.withUnsafeMutableBufferPointer {
        FloatConversion.widen(source.baseAddress!, dtype: .bf16, count: all.count, into: $0.baseAddress!)
      }
    }
    for (bits, value) in zip(all, widened) { #expect(value.bitPattern == UInt32(bits) << 16) }
  }

  @Test("F8 tables decode the formats' landmarks")
  func fp8() {
    let e4m3 = FP8Tables.e4m3
    #expect(e4m3[0x7E] == 448)  // max finite
    #expect(e4m3[0x7F].isNaN)  // S.1111.111 is the only NaN
    #expect(e4m3[0x01] == 0x1p-9)  // smallest subnormal
    #expect(e4m3[0x38] == 1)
    let e5m2 = FP8Tables.e5m2
    #expect(e5m2[0x7B] == 57344)
    #expect(e5m2[0x7C] == .infinity)
    #expect(e5m2[0x7D].isNaN)
    #expect(e5m2[0x3C] == 1)
    #expect(FP8Tables.e4m3fnuz[0x80].isNaN && FP8Tables.e4m3fnuz[0x40] == 1)
    #expect(FP8Tables.e8m0[127] == 1 && FP8Tables.e8m0[255].isNaN)
  }

  @Test("Large conversions (streaming stores, odd start) equal the portable element functions")
  func largeStreaming() {
    var generator = SeededGenerator(seed: 12)
    let count = 3_000_001
    let bits = (0..<count).map { _ in UInt16.random(in: 0...UInt16.max, using: &generator) }
    var out = [Float](repeating: 0, count: count + 1)
    for dtype in [DType.f16, .bf16] {
      bits.withUnsafeBytes { source in
        out.withUnsafeMutableBufferPointer {
          FloatConversion.widen(source.baseAddress!, dtype: dtype, count: count, into: $0.baseAddress! + 1)
        }
      }
      for i in stride(from: 0, to: count, by: 997) {
        let want = dtype == .f16 ? FloatConversion.halfToFloat(bits[i]) : UInt32(bits[i]) << 16
        #expect(out[i + 1].bitPattern == want || (out[i + 1].isNaN && Float(bitPattern: want).isNaN), "\(dtype) \(i)")
      }
    }
    let floats = (0..<count).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
    var narrowed = [UInt16](repeating: 0, count: count)
    for dtype in [DType.f16, .bf16] {
      floats.withUnsafeBufferPointer { source in
        narrowed.withUnsafeMutableBytes {
          FloatConversion.narrow(source.baseAddress!, count: count, to: dtype, into: $0.baseAddress!)
        }
      }
      for i in stride(from: 0, to: count, by: 997) {
        let want =
          dtype == .f16
          ? FloatConversion.floatToHalf(floats[i].bitPattern) : FloatConversion.floatToBFloat(floats[i].bitPattern)
        if floats[i].isNaN {
          #expect(narrowed[i] & (dtype == .f16 ? 0x7E00 : 0x7FC0) == (dtype == .f16 ? 0x7E00 : 0x7FC0))
        } else {
          #expect(narrowed[i] == want, "\(dtype) \(i)")
        }
      }
    }
  }

  @Test("Unaligned sources convert like aligned ones")
  func unaligned() {
    let values: [Float16] = (0..<37).map { Float16(Float($0) * 0.25 - 3) }
    var bytes = [UInt8](repeating: 0, count: 1)
    values.withUnsafeBytes { bytes += $0 }
    var out = [Float](repeating: 0, count: values.count)
    bytes.withUnsafeBytes { raw in
      out.withUnsafeMutableBufferPointer {
        FloatConversion.widen(raw.baseAddress! + 1, dtype: .f16, count: values.count, into: $0.baseAddress!)
      }
    }
    #expect(out == values.map { Float($0) })
  }

  @Test("Q8_0 quantisation matches ggml's rule and dequantises back within one step")
  func q8() {
    var generator = SeededGenerator(seed: 3)
    let values = (0..<64).map { _ in Float.random(in: -2...2, using: &generator) }
    var blocks = [UInt8](repeating: 0, count: 68)
    values.withUnsafeBufferPointer { source in
      blocks.withUnsafeMutableBytes { Dequantize.quantizeQ8_0(source.baseAddress!, count: 64, into: $0.baseAddress!) }
    }
    var back = [Float](repeating: 0, count: 64)
    blocks.withUnsafeBytes { raw in
      back.withUnsafeMutableBufferPointer { Dequantize.widen(raw, dtype: .q8_0, count: 64, into: $0.baseAddress!) }
    }
    for block in 0..<2 {
      let slice = values[(block * 32)..<(block * 32 + 32)]
      let step = slice.map(abs).max()! / 127
      for j in 0..<32 {
        #expect(abs(back[block * 32 + j] - values[block * 32 + j]) <= step * 0.5 + step * 127 * 0x1p-10)
      }  // d itself is rounded to f16
    }
  }
}
