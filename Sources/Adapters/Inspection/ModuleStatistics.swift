import Checkpoints

/// The per-module quantities of one adapter (aggregation.md, "Per-layer inspection quantities"),
/// all from the `r x r` core of thin QRs of the factors: no dense `[d, k]` matrix.
public struct ModuleStatistics: Sendable {
  /// The module's name.
  public let name: String
  /// `[d, k]`, the update's shape.
  public let shape: [Int]
  /// `r`, from the tensors.
  public let rank: Int
  /// The module's alpha (after `alpha_pattern`).
  public let alpha: Double
  /// `s`: `alpha / r`, or `alpha / sqrt(r)` with rsLoRA (1 for a GGUF alpha of 0).
  public let scale: Double
  /// The stored dtype of `A`.
  public let dtype: DType
  /// `||A||_F` as stored.
  public let normA: Double
  /// `||B||_F` as stored (without the scale).
  public let normB: Double
  /// `||b||` of the module's `lora_B.bias` as stored (nil without one).
  public let normBias: Double?
  /// `||s B A||_F`, nil when the factors hold NaN or Inf.
  public let normUpdate: Double?
  /// Singular values of `s B A`, descending.
  public let singularValues: [Double]
  /// How many singular values exceed `max(d, k) eps64 sigma_1`: the rank of the product of the
  /// stored factors, at the precision of the fp64 QR and SVD that compute it (whatever the
  /// storage dtype: rounding factors to bf16 does not lower their rank).
  public let numericalRank: Int?
  /// `||s B A||_F^2 / sigma_1^2`; nil for a zero or non-finite update.
  public let stableRank: Double?
  /// How many singular values are at most `eps(dtype) ||s B A||_F`: directions a dense product
  /// stored in the adapter's dtype would lose in its rounding (a dtype notion, not a rank).
  public let belowStoragePrecision: Int?
  /// NaN values in `A` and `B`.
  public let nanCount: Int
  /// Infinite values in `A` and `B`.
  public let infCount: Int
  /// The rank the config claims, when the tensors have another (PEFT would refuse the module).
  public let configRank: Int?

  /// Whether `B` is all zeros: an untrained adapter, whose update is zero.
  public var bAllZero: Bool { normB == 0 && nanCount == 0 }
  /// Whether the numerical rank is below `rank` (not flagged when `B` is all zeros).
  public var rankDeficient: Bool { (numericalRank.map { $0 < rank } ?? false) && !bAllZero }
  /// Whether `A` or `B` holds NaN or Inf.
  public var nonFinite: Bool { nanCount + infCount > 0 }

  /// Short names of what looks wrong: an untrained adapter, lost rank, non-finite values, a
  /// config that disagrees with the tensors.
  public var flags: [String] {
    var flags: [String] = []
    if bAllZero { flags.append("B-all-zero") }
    if rankDeficient { flags.append("rank-deficient") }
    if nonFinite { flags.append("non-finite") }
    if configRank != nil { flags.append("config-rank-mismatch") }
    return flags
  }

  /// Reads `module`'s factors and computes its statistics; with NaN or Inf in them, only the norms and
  /// counts.
  ///
  /// The singular values of `s B A` come from the `r x r` core of two thin QRs (`s B A = Qb (Rb Ra^T)
  /// Qa^T`), never from the `[d, k]` update.
  ///
  /// - Parameter module: the module.
  /// - Throws: ``AdapterError``: `blas-unavailable`, or a read error (`unsupported-dtype` for factors
  ///   that are not numbers).
  /// - Complexity: O(r (d + k)) values read and widened; O(r² (d + k)) for the QRs, O(r³) for the
  ///   core's SVD.
  public init(_ module: LoRAModule) throws(AdapterError) {
    try LinearAlgebra.load()
    let a = try AdapterError.wrap { () throws(CheckpointError) in try module.a.floats() }
    let b = try AdapterError.wrap { () throws(CheckpointError) in try module.bFloats() }
    name = module.name
    shape = module.updateShape
    rank = module.rank
    alpha = module.alpha
    scale = module.scale
    dtype = module.a.dtype
    configRank = module.configRank
    var (nan, inf, sumA, sumB) = (0, 0, 0.0, 0.0)
    for (values, isA) in [(a, true), (b, false)] {
      for value in values {
        if value.isNaN { nan += 1 } else if value.isInfinite { inf += 1 }
        if isA { sumA += Double(value) * Double(value) } else { sumB += Double(value) * Double(value) }
      }
    }
    (nanCount, infCount) = (nan, inf)
    (normA, normB) = (sumA.squareRoot(), sumB.squareRoot())
    normBias = try module.bias.map { bias throws(AdapterError) in
      try AdapterError.wrap { () throws(CheckpointError) in try bias.floats() }.reduce(0) {
        $0 + Double($1) * Double($1)
      }.squareRoot()
    }
    guard nanCount + infCount == 0 else {
      (normUpdate, singularValues, numericalRank, stableRank, belowStoragePrecision) = (nil, [], nil, nil, nil)
      return
    }
    let ma = Matrix(rows: rank, cols: shape[1], values: a.map { Double($0) })
    let mb = Matrix(rows: shape[0], cols: rank, values: b.map { module.scale * Double($0) })
    // Thin QR of B and A^T (d x r and k x r): s B A = Qb (Rb Ra^T) Qa^T, so the singular values
    // are those of the r x r core.
    let rb = LinearAlgebra.thinQR(mb, computeQ: false).r
    let ra = LinearAlgebra.thinQR(ma.transposed, computeQ: false).r
    let sigma = LinearAlgebra.svd(rb * ra.transposed).s
    singularValues = sigma
    let total = sigma.reduce(0) { $0 + $1 * $1 }
    normUpdate = total.squareRoot()
    let top = sigma.first ?? 0
    let cutoff = Double(max(shape[0], shape[1])) * Double.ulpOfOne * top
    numericalRank = sigma.filter { $0 > cutoff }.count
    stableRank = top > 0 ? total / (top * top) : nil
    let storage = Self.epsilon(dtype) * total.squareRoot()
    belowStoragePrecision = sigma.filter { $0 <= storage }.count
  }

  /// Machine epsilon of the stored dtype (its relative rounding of one value).
  static func epsilon(_ dtype: DType) -> Double {
    switch dtype {
    case .f64: 0x1p-52
    case .f16: 0x1p-10
    case .bf16: 0x1p-7
    default: 0x1p-23
    }
  }
}
