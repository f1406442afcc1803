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
}
