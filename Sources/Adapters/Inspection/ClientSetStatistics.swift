import Checkpoints

extension ModuleGeometry {
  /// Cosine of each client's update `Bs_u A_u` to `T`, from the Gram blocks (nil for a zero update).
  func cosinesToT() -> [Double?] {
    let (ka, kb) = (kaBlocks, kbBlocks)
    return (0..<clients).map { u in
      let own = FloraNA.trace(kb[u][u], ka[u][u])
      var inner = 0.0
      for j in 0..<clients { inner += weights[j] * FloraNA.trace(kb[u][j], ka[j][u]) }
      guard own > 0, normT > 0 else { return nil }
      return inner / (own.squareRoot() * normT)
    }
  }

  /// `||T - Bh Ah||_F` for arbitrary factors (an adapter fedlora did not produce): the roots of
  /// the Grams of `X = [Bs W, -Bh]` and `Y = [Ast; Ah]`, and the norm of their small product.
  /// The Grams are assembled from `KB`, `KA` and thin cross products, not recomputed over `d, k`.
  /// - Parameters:
  ///   - b: the adapter's `Bh` `[d, R]`, scale folded in.
  ///   - a: its `Ah` `[R, k]`.
  ///   - factors: the clients' factors this geometry was computed from.
  /// - Returns: the residual's Frobenius norm.
  /// - Complexity: O(N R (d + k)) for the cross products, plus O((N + R)³) for the roots.
  public func residualNorm(b: Matrix, a: Matrix, factors: ModuleFactors) -> Double {
    let bsTbh = factors.stackedB.product(transposingSelf: true, b)  // Bs^T Bh, N x R
    let w = weightMatrix  // built once: it is N x N
    let cross = -1.0 * (w * bsTbh)  // (Bs W)^T (-Bh)
    let xGram = Matrix.blocks(w * kb * w, cross, cross.transposed, b.gramOfColumns)
    let astAh = factors.stackedA.product(a, transposingOther: true)  // Ast Ah^T, N x R
    let yGram = Matrix.blocks(ka, astAh, astAh.transposed, a.gramOfRows)
    let rx = LinearAlgebra.gramRoot(xGram).root
    let ry = LinearAlgebra.gramRoot(yGram).root
    return (rx * ry.transposed).squaredNorm.squareRoot()
  }
}

extension Matrix {
  /// The values as a file of `dtype` would hold them (F16/BF16 round to nearest even; others
  /// through F32).
  func rounded(to dtype: DType) -> Matrix {
    guard dtype != .f64 else { return self }
    let floats = values.map { Float($0) }
    guard dtype == .f16 || dtype == .bf16 else {
      return Matrix(rows: rows, cols: cols, values: floats.map { Double($0) })
    }
    var bytes = [UInt8](repeating: 0, count: floats.count * 2)
    bytes.withUnsafeMutableBytes { FloatConversion.narrow(floats, to: dtype, into: $0) }
    var back = [Float](repeating: 0, count: floats.count)
    bytes.withUnsafeBytes { raw in
      back.withUnsafeMutableBufferPointer { Dequantize.widen(raw, dtype: dtype, into: $0) }
    }
    return Matrix(rows: rows, cols: cols, values: back.map { Double($0) })
  }
}
