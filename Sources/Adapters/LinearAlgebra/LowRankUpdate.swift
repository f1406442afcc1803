import CLinearAlgebra

/// `left @ right` in fp32 (its transpose for embeddings and fan-in-fan-out weights, whose base
/// is stored [k, d]), added into rows of a widened base weight by SGEMM: the base merge's fold.
struct LowRankUpdate {
  let l: [Float], r: [Float]
  let d: Int32, rank: Int32, k: Int32
  let transposed: Bool

  init(left: Matrix, right: Matrix, transposed: Bool) {
    (l, r) = (left.values.map { Float($0) }, right.values.map { Float($0) })
    (d, rank, k) = (Int32(left.rows), Int32(left.cols), Int32(right.cols))
    self.transposed = transposed
  }

  /// `w += ` rows `start..<start+n` of the update (`w` is n x width, row-major).
  func add(rows start: Int, count n: Int, to w: UnsafeMutablePointer<Float>) {
    guard rank > 0 else { return }
    l.withUnsafeBufferPointer { lp in
      r.withUnsafeBufferPointer { rp in
        guard let lBase = lp.baseAddress, let rBase = rp.baseAddress else { return }
        if transposed {
          // W0 is [k, d]: rows start..<start+n of R^T L^T.
          la_sgemm(
            CblasRowMajor, CblasTrans, CblasTrans, Int32(n), d, rank, 1, rBase + start, k, lBase, rank, 1, w, d)
        } else {
          la_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), k, rank, 1, lBase + start * Int(rank), rank, rBase,
            k, 1, w, k)
        }
      }
    }
  }
}
