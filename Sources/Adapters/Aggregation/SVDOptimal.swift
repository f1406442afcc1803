import Checkpoints

extension AggregationMethod {
  /// The optimal rank-R estimate (``SVDOptimal``).
  public static let svd = AggregationMethod(SVDOptimal.self)
}

/// The optimal rank-`R` estimate (Eckart-Young), never forming `T`. With the geometry's roots
/// (`Rb^T Rb = Bs^T Bs`, `Ra^T Ra = Ast Ast^T`: QR factors up to a rotation, at a fraction of the
/// cost of a Householder QR of the `d x Ur` stack), `Bs = Qb Rb` and `Ast^T = Qa Ra` with
/// `Qb = Bs Gb`, `Qa = Ast^T Ga` for right inverses `Rb Gb = I`, `Ra Ga = I`, so
/// `T = Qb (Rb W Ra^T) Qa^T`. The `R` largest singular triplets of that core `Uc S Vc^T` give the
/// balanced split `Bh = Qb Uc_R S_R^(1/2)`, `Ah = S_R^(1/2) Vc_R^T Qa^T`. The error reported is
/// that of the factors as computed: the floor, plus rounding of about 1e-8 of `||T||`.
public struct SVDOptimal: MergeMethod {
  /// `svd`.
  public static let name = "svd"
  /// `--rank`.
  public static let acceptedOptions: Set<MergeOption> = [.rank]

  /// The rank asked for (`--rank`); the clients' largest by default.
  public let rank: Int?

  /// An svd of `rank`.
  /// - Parameter rank: the rank asked for; nil for the clients' largest.
  public init(rank: Int?) { self.rank = rank }

  /// The rank of `options`.
  /// - Parameters:
  ///   - set: the clients (unused).
  ///   - options: the merge's options (`rank`).
  public init(_ set: ClientSet, options: MergeOptions) { self.init(rank: options.rank) }

  /// Singular values of `T` at or below this fraction of the largest count as zero when a rank
  /// is clamped: about the resolution of the fp64 Gram route (sqrt of the fp64 epsilon).
  public static let rankTolerance = 1e-7

  /// `rank` (else the clients' largest), at most `min(d, k)` and the clients' ranks added up.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the rank to write before the update's own rank is known.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    min(rank ?? ranks.max() ?? 0, d, k, ranks.reduce(0, +))
  }

  /// ``outputRank(clientRanks:d:k:)``, and beyond the clients' largest rank at most the ideal
  /// update's numerical rank (components past it would be zeros): read from the module's
  /// geometry, one extra pass for those modules only (not for a plan: then an upper bound).
  /// - Parameters:
  ///   - set: the clients.
  ///   - options: the merge's options (`planOnly`).
  /// - Returns: each module's rank, and why it is below the rank asked for (`.shape` or `.update`).
  /// - Throws: `AdapterError` when a module's factors cannot be read or are not finite.
  /// - Complexity: O(modules) without `--rank` above the clients' largest; else, for each such module,
  ///   the geometry's cost (O(N² (d + k))), modules in parallel.
  public func outputRanks(_ set: ClientSet, options: MergeOptions) throws(AdapterError)
    -> [(rank: Int, limit: RankLimit?)]
  {
    let modules = set.moduleNames.map { set.modules(named: $0).compactMap { $0 } }
    let ranks = modules.map { entries in
      let shape = entries.first?.updateShape ?? [0, 0]
      return outputRank(clientRanks: entries.map(\.rank), d: shape[0], k: shape[1])
    }
    guard let asked = rank, !options.planOnly else { return ranks.map { ($0, nil) } }
    return try parallelMap(Array(zip(set.moduleNames, zip(ranks, modules)))) {
      module, pair throws(AdapterError) -> (rank: Int, limit: RankLimit?) in
      let (rank, entries) = pair
      let largest = entries.map(\.rank).max() ?? 0
      guard rank > largest else { return (rank, rank < asked ? .shape : nil) }
      let values = ModuleGeometry(try ModuleFactors(set, module: module)).singularValues
      let numerical = values.filter { $0 > Self.rankTolerance * (values.first ?? 0) }.count
      let limited = max(largest, min(rank, numerical))
      return (limited, limited < rank ? .update : limited < asked ? .shape : nil)
    }
  }

  /// Beyond the clients' largest rank, the update's numerical rank may be lower.
  /// - Parameters:
  ///   - rank: a planned rank.
  ///   - clientRanks: the ranks of the clients that have the module.
  /// - Returns: whether `rank` exceeds the clients' largest.
  public func rankIsUpperBound(_ rank: Int, clientRanks: [Int]) -> Bool { rank > (clientRanks.max() ?? 0) }

  /// The optimal factors at the input's rank.
  /// - Parameter input: the module's factors and geometry.
  /// - Returns: the estimate (`||T - Bh Ah||` is the floor, up to rounding).
  /// - Complexity: as aggregate(_:geometry:rank:).
  public func solve(_ input: GeometryInput) -> ModuleEstimate {
    Self.aggregate(input.factors, geometry: input.geometry, rank: input.rank)
  }

  /// The optimal rank-`rank` factors from `g`'s core, and their residual.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - g: their Gram geometry.
  ///   - rank: the rank to write.
  /// - Returns: `Ah` `[rank, k]`, `Bh` `[d, rank]` and the residual.
  /// - Complexity: O(N³) for the core's singular triplets and the right inverses, plus O(N rank (d +
  ///   k)) for the two products with the stacks, N = U R.
  public static func aggregate(_ factors: ModuleFactors, geometry g: ModuleGeometry, rank: Int) -> ModuleEstimate {
    let (uc, s, vt) = LinearAlgebra.largestSingularTriplets(g.core, count: rank)
    var left = Matrix(zeros: uc.rows, rank)
    var right = Matrix(zeros: rank, vt.cols)
    for i in 0..<s.count {
      let root = s[i].squareRoot()
      for row in 0..<uc.rows { left[row, i] = uc[row, i] * root }
      for col in 0..<vt.cols { right[i, col] = vt[i, col] * root }
    }
    // Components beyond the available singular values (tiny modules) stay zero.
    let cb = LinearAlgebra.rightInverse(g.rb, pivots: g.rbPivots) * left
    let ca = right * LinearAlgebra.rightInverse(g.ra, pivots: g.raPivots).transposed
    // The residual of the factors as written (the floor plus the split's rounding).
    return ModuleEstimate(
      a: combinedA(factors, ca, rank: g.rank), b: combinedB(factors, cb, rank: g.rank),
      residual: g.residualNorm(cb: cb, ca: ca))
  }

  /// `Ca Ast` as a sum over clients of `Ca[:, block u] A_u`: no `N x k` stack in memory.
  static func combinedA(_ factors: ModuleFactors, _ ca: Matrix, rank r: Int) -> Matrix {
    ca * factors.stackedA  // the stack's padding rows are zeros
  }

  /// `Bs Cb` as a sum over clients of `Bs_u Cb[block u, :]`: no `d x N` stack in memory.
  static func combinedB(_ factors: ModuleFactors, _ cb: Matrix, rank r: Int) -> Matrix {
    factors.stackedB * cb  // the stack's padding columns are zeros
  }
}
