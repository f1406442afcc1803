import CSIMD

/// The fp64 loops of the aggregation's sums, over stored values in one pass: widening a factor
/// with its scale folded in, adding a weighted factor into a sum, and `y += a x`. Every stored
/// value goes through Float (as ``Tensor/floats()`` gives it) and products are never fused with
/// the sum, so the SIMD kernels (AVX2, F16C) and the portable loops agree bit for bit.
package enum DoubleKernels {
  /// `destination[i] = scale * Double(x_i)` for the `count` values of `dtype` at `source`;
  /// false when one of them is NaN or infinite.
  package static func widen(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, scale: Double, into destination: UnsafeMutablePointer<Double>
  ) -> Bool {
    widen(source, dtype: dtype, rows: 1, cols: count, scale: scale, into: destination, stride: count)
  }

  /// `destination[r * stride + c] = scale * Double(x[r][c])` for the `rows` x `cols` values of
  /// `dtype` at `source` (rows whole, one after the other): a factor widened into its columns
  /// of a stacked matrix. False when one of them is NaN or infinite.
  package static func widen(
    _ source: UnsafeRawPointer, dtype: DType, rows: Int, cols: Int, scale: Double,
    into destination: UnsafeMutablePointer<Double>, stride: Int
  ) -> Bool {
    if dtype.block.elements == 1, let kind = kernelKind(dtype) {
      var nonFinite: UInt32 = 0
      let rowBytes = cols * dtype.block.bytes
      if csimd_widen_rows_f64(source, kind, rows, cols, rowBytes, scale, destination, stride, &nonFinite) == rows {
        return nonFinite == 0
      }
    }
    // Without the kernel, or for rows that need not start at a block: all values in order.
    return portable(source, dtype: dtype, from: 0, count: rows * cols) { i, x in
      destination[i / cols * stride + i % cols] = scale * Double(x)
    }
  }

  /// `destination[i] += weight * (scale * Double(x_i))`; false when an `x_i` is NaN or infinite.
  package static func accumulate(
    _ source: UnsafeRawPointer, dtype: DType, count: Int, scale: Double, weight: Double,
    into destination: UnsafeMutablePointer<Double>
  ) -> Bool {
    var nonFinite: UInt32 = 0
    let done =
      kernelKind(dtype).map { csimd_accumulate_f64(source, $0, count, scale, weight, destination, &nonFinite) } ?? 0
    let finite = portable(source, dtype: dtype, from: done, count: count) { i, x in
      destination[i] += weight * (scale * Double(x))
    }
    return finite && nonFinite == 0
  }

  /// `y[i] += a * x[i]` for `count` values.
  package static func axpy(_ x: UnsafePointer<Double>, count: Int, a: Double, into y: UnsafeMutablePointer<Double>) {
    for i in csimd_axpy_f64(x, count, a, y)..<count { y[i] += a * x[i] }
  }

  private static func kernelKind(_ dtype: DType) -> Int32? {
    switch dtype {
    case .f32: Int32(CSIMD_F32)
    case .f16: Int32(CSIMD_F16)
    case .bf16: Int32(CSIMD_BF16)
    default: nil
    }
  }

  /// Values `start..<count` (all of them without a kernel, a tail of fewer than eight after one) widened to Float a chunk at a time and handed to `apply`; false when one is NaN
  /// or infinite.
  private static func portable(
    _ source: UnsafeRawPointer, dtype: DType, from start: Int, count: Int, _ apply: (Int, Float) -> Void
  ) -> Bool {
    guard start < count else { return true }
    let (blockElements, blockBytes) = dtype.block
    let chunk = 4096  // a multiple of every block size
    var bad: UInt32 = 0
    withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { buffer in
      guard let values = buffer.baseAddress else { return }
      var i = start
      while i < count {
        let n = min(chunk, count - i)
        let bytes = UnsafeRawBufferPointer(
          start: source + i / blockElements * blockBytes, count: n / blockElements * blockBytes)
        Dequantize.widen(bytes, dtype: dtype, count: n, into: values)
        for j in 0..<n {
          bad |= (values[j].bitPattern & 0x7F80_0000) == 0x7F80_0000 ? 1 : 0
          apply(i + j, values[j])
        }
        i += n
      }
    }
    return bad == 0
  }
}
