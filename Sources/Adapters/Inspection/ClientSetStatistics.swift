import Checkpoints

/// Per-layer comparison of a client set with its aggregates: `||T||`, each client's cosine to
/// `T` (drift), and the relative errors of FedAvg, FLoRA-NA and the rank-R floor; with a merged
/// adapter someone else produced, its error too.
public struct LayerComparison: Sendable {
  public let name: String
  public let shape: [Int]
  public let normT: Double
  /// `<s_u B_u A_u, T> / (||s_u B_u A_u|| ||T||)` per client (nil for a zero update).
  public let cosines: [Double?]
  public let fedavg: Double
  public let floraNA: Double
  public let floor: Double
  /// Residual of the merged adapter, when one was given.
  public let against: Double?
  /// The residuals of FedAvg, FLoRA-NA and the SVD floor estimate with their factors rounded
  /// to the merged adapter's dtype, as a merge would store them: the audit compares like with
  /// like, and the change rounding makes is the tolerance of its comparisons.
  public let roundedFedavg: Double?
  public let roundedFloraNA: Double?
  public let roundedFloor: Double?

  public func relative(_ residual: Double?) -> Double? { Adapters.relative(residual, to: normT) }

  /// Compares the clients of `set` on `module`; `merged` is the audited adapter's module.
  public init(_ set: ClientSet, module: String, rank: Int?, merged: LoRAModule?, flora: FloraNA.Options = .init())
    throws
  {
    let factors = try LayerFactors(set, module: module)
    let g = LayerGeometry(factors)
    name = module
    shape = [factors.d, factors.k]
    normT = g.normT
    // Residuals from the coefficients alone: no merged factors are formed.
    fedavg = g.residualNorm(p: factors.weights, q: factors.weights)
    let solved = FloraNA.solve([g], options: flora)
    floraNA = g.residualNorm(p: solved.p, q: solved.q)
    floor = g.floorResidual(rank: rank ?? factors.maxRank)
    cosines = g.cosinesToT()
    if let merged {
      guard merged.updateShape == shape else {
        throw AdapterError.shapeMismatch(
          client: merged.a.file.path, module: module, expected: shape, found: merged.updateShape)
      }
      let b = Matrix(rows: factors.d, cols: merged.rank, values: try merged.bFloats().map { merged.scale * Double($0) })
      let a = Matrix(rows: merged.rank, cols: factors.k, values: try merged.a.floats().map { Double($0) })
      against = g.residualNorm(b: b, a: a, factors: factors)
      let dtype = merged.b.dtype
      func stored(_ estimate: LayerEstimate) -> Double {
        g.residualNorm(b: estimate.b.rounded(to: dtype), a: estimate.a.rounded(to: dtype), factors: factors)
      }
      roundedFedavg = stored(FedAvg.combine(factors, geometry: g, p: factors.weights, q: factors.weights))
      roundedFloraNA = stored(FedAvg.combine(factors, geometry: g, p: solved.p, q: solved.q))
      roundedFloor = stored(
        SVDOptimal.aggregate(factors, geometry: g, rank: min(rank ?? factors.maxRank, g.singularValues.count)))
    } else {
      (against, roundedFedavg, roundedFloraNA, roundedFloor) = (nil, nil, nil, nil)
    }
  }
}

extension LayerGeometry {
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
  public func residualNorm(b: Matrix, a: Matrix, factors: LayerFactors) -> Double {
    let bsTbh = factors.stackedB(paddedTo: rank).product(transposingSelf: true, b)  // Bs^T Bh, N x R
    let w = weightMatrix  // built once: it is N x N
    let cross = -1.0 * (w * bsTbh)  // (Bs W)^T (-Bh)
    let xGram = Matrix.blocks(w * kb * w, cross, cross.transposed, b.gramOfColumns)
    let astAh = factors.stackedA(paddedTo: rank).product(a, transposingOther: true)  // Ast Ah^T, N x R
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
