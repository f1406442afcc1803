import TestSupport
import Testing

@testable import Checkpoints

@Suite("fp64 kernels of the aggregation's sums against the portable arithmetic")
struct DoubleKernelsTests {
  /// `count` stored values of `dtype` (F32, F16, BF16) and the Floats they widen to.
  static func stored(_ dtype: DType, count: Int, seed: UInt64) -> (bytes: [UInt8], floats: [Float]) {
    var generator = SeededGenerator(seed: seed)
    let values = (0..<count).map { _ in Float.random(in: -4...4, using: &generator) * 1e-3 }
    var bytes = [UInt8](repeating: 0, count: count * (dtype == .f32 ? 4 : 2))
    bytes.withUnsafeMutableBytes { FloatConversion.narrow(values, to: dtype, into: $0) }
    var floats = [Float](repeating: 0, count: count)
    bytes.withUnsafeBytes { raw in
      floats.withUnsafeMutableBufferPointer { Dequantize.widen(raw, dtype: dtype, into: $0) }
    }
    return (bytes, floats)
  }

  @Test(
    "widen and accumulate equal scale * Double(x) and y + w * (scale * Double(x)) bit for bit, kernel and tail",
    arguments: [DType.f32, .f16, .bf16])
  func bitForBit(_ dtype: DType) {
    for count in [0, 1, 7, 8, 9, 31, 1000] {
      let (bytes, floats) = Self.stored(dtype, count: count, seed: UInt64(count))
      let (scale, weight) = (0.37, 1.0 / 3)
      var widened = [Double](repeating: .nan, count: count)
      var sums = (0..<count).map { Double($0) * 1e-4 }
      let start = sums
      let finite = bytes.withUnsafeBytes { raw in
        (
          widened.withUnsafeMutableBufferPointer {
            DoubleKernels.widen(raw.baseAddress!, dtype: dtype, count: count, scale: scale, into: $0.baseAddress!)
          },
          sums.withUnsafeMutableBufferPointer {
            DoubleKernels.accumulate(
              raw.baseAddress!, dtype: dtype, count: count, scale: scale, weight: weight, into: $0.baseAddress!)
          }
        )
      }
      #expect(finite == (true, true))
      #expect(widened == floats.map { scale * Double($0) }, "\(dtype) \(count)")
      #expect(sums == zip(start, floats).map { $0 + weight * (scale * Double($1)) }, "\(dtype) \(count)")
    }
  }

  @Test("A NaN or an infinity anywhere is reported, in the SIMD body or the tail", arguments: [DType.f32, .f16, .bf16])
  func nonFinite(_ dtype: DType) {
    for position in [0, 5, 8, 15, 16, 19] {
      for bad in [Float.nan, .infinity, -.infinity] {
        var values = [Float](repeating: 0.5, count: 20)
        values[position] = bad
        var bytes = [UInt8](repeating: 0, count: 20 * (dtype == .f32 ? 4 : 2))
        bytes.withUnsafeMutableBytes { FloatConversion.narrow(values, to: dtype, into: $0) }
        var out = [Double](repeating: 0, count: 20)
        let finite = bytes.withUnsafeBytes { raw in
          out.withUnsafeMutableBufferPointer {
            DoubleKernels.accumulate(
              raw.baseAddress!, dtype: dtype, count: 20, scale: 1, weight: 1, into: $0.baseAddress!)
          }
        }
        #expect(!finite, "\(dtype) \(bad) at \(position)")
      }
    }
  }

  @Test("axpy: y + a x, the same in the kernel and the tail")
  func axpy() {
    let x = (0..<13).map { Double($0) / 7 }
    var y = (0..<13).map { Double($0) * 3 }
    let expected = zip(y, x).map { $0 + 0.3 * $1 }
    x.withUnsafeBufferPointer { xs in
      y.withUnsafeMutableBufferPointer { DoubleKernels.axpy(xs.baseAddress!, count: 13, a: 0.3, into: $0.baseAddress!) }
    }
    #expect(y == expected)
  }

  @Test(
    "widen(rows:cols:) puts each row at its stride, equal to the whole widening, tails and odd addresses included",
    arguments: [DType.f32, .f16, .bf16])
  func stridedRows(_ dtype: DType) {
    for (rows, cols) in [(3, 13), (5, 8), (2, 1), (4, 16)] {
      let (stored, floats) = Self.stored(dtype, count: rows * cols, seed: UInt64(rows * 31 + cols))
      // One byte in front, so the rows start at an odd address.
      let bytes = [0] + stored
      let stride = cols + 3
      var out = [Double](repeating: -1, count: rows * stride)
      let finite = bytes.withUnsafeBytes { raw in
        out.withUnsafeMutableBufferPointer {
          DoubleKernels.widen(
            raw.baseAddress! + 1, dtype: dtype, rows: rows, cols: cols, scale: 0.5, into: $0.baseAddress!,
            stride: stride)
        }
      }
      #expect(finite)
      for r in 0..<rows {
        #expect(
          Array(out[(r * stride)..<(r * stride + cols)])
            == floats[(r * cols)..<((r + 1) * cols)].map { 0.5 * Double($0) })
        #expect(
          out[(r * stride + cols)..<((r + 1) * stride)].allSatisfy { $0 == -1 }, "\(dtype): row \(r)'s padding kept")
      }
    }
    var values = [Float](repeating: 1, count: 2 * 13)
    values[25] = .nan  // in the last row's scalar tail
    var bytes = [UInt8](repeating: 0, count: values.count * (dtype == .f32 ? 4 : 2))
    bytes.withUnsafeMutableBytes { FloatConversion.narrow(values, to: dtype, into: $0) }
    var out = [Double](repeating: 0, count: 2 * 13)
    let finite = bytes.withUnsafeBytes { raw in
      out.withUnsafeMutableBufferPointer {
        DoubleKernels.widen(
          raw.baseAddress!, dtype: dtype, rows: 2, cols: 13, scale: 1, into: $0.baseAddress!, stride: 13)
      }
    }
    #expect(!finite)
  }

  @Test("widen(rows:cols:) of a block-quantised dtype (Q8_0) widens whole, then places the rows")
  func quantisedRows() {
    // Two Q8_0 blocks: scale 0.5 (F16 0x3800), values 0...31, then scale 2 (0x4000), values -1.
    var bytes: [UInt8] = [0x00, 0x38] + (0..<32).map { UInt8($0) }
    bytes += [0x00, 0x40] + [UInt8](repeating: 0xFF, count: 32)
    var out = [Double](repeating: 0, count: 4 * 20)
    let finite = bytes.withUnsafeBytes { raw in
      out.withUnsafeMutableBufferPointer {
        DoubleKernels.widen(
          raw.baseAddress!, dtype: .q8_0, rows: 4, cols: 16, scale: 1, into: $0.baseAddress!, stride: 20)
      }
    }
    #expect(finite)
    let expected = (0..<32).map { 0.5 * Double($0) } + [Double](repeating: -2, count: 32)
    for r in 0..<4 { #expect(Array(out[(r * 20)..<(r * 20 + 16)]) == Array(expected[(r * 16)..<((r + 1) * 16)])) }
  }
}
