import Checkpoints

extension AggregationMethod {
  /// FedAvg (``FedAvg``).
  public static let fedavg = AggregationMethod(FedAvg.self)
}

/// FedAvg / FedIT: average the (zero-padded) factors separately, `Ah = sum w_u A_u`,
/// `Bh = sum w_u Bs_u`. In general `Bh Ah != T`: that gap is what the reports show.
public struct FedAvg: MergeMethod {
  /// `fedavg`.
  public static let name = "fedavg"
  /// `fedit`, the FedIT paper's name.
  public static let aliases = ["fedit"]
  /// Zero-pads every client to the largest rank.
  public static let zeroPadsRanks = true
  /// Clients that share rank, alpha and rsLoRA keep their config (B averaged unscaled).
  public static let keepsClientConfig = true

  /// FedAvg has no options.
  public init() {}

  /// FedAvg has no options.
  /// - Parameters:
  ///   - set: the clients (unused).
  ///   - options: the merge's options (unused).
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// The clients' largest rank: every client is zero-padded to it.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the largest of `ranks`.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int { ranks.max() ?? 0 }

  /// The averaged factors, with their residual (and `p = q = w`) when the geometry is given.
  /// - Parameter input: the module's factors, and its geometry when errors are computed.
  /// - Returns: `Ah` `[R, k]` and `Bh` `[d, R]`.
  /// - Complexity: O(U R (d + k)) for U clients of largest rank R; O(N² R) more for the residual.
  public func solve(_ input: FactorsInput) -> ModuleEstimate {
    if let geometry = input.geometry { return Self.aggregate(input.factors, geometry: geometry) }
    let (a, b) = Self.sum(input.factors, p: input.factors.weights, q: input.factors.weights)
    return ModuleEstimate(a: a, b: b, residual: nil)
  }

  /// The averaged factors read straight from the clients' files, without a residual
  /// (streamedSum(_:module:)).
  /// - Parameters:
  ///   - set: the clients.
  ///   - module: the module's name.
  /// - Returns: the averaged factors.
  /// - Throws: as streamedSum(_:module:).
  /// - Complexity: as streamedSum(_:module:).
  public func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate? {
    let (a, b) = try Self.streamedSum(set, module: module)
    return ModuleEstimate(a: a, b: b, residual: nil)
  }

  /// The averaged factors (`p = q = w`) and their residual.
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - geometry: their Gram geometry.
  /// - Returns: `Ah`, `Bh`, the residual and the coefficients.
  /// - Complexity: O(U R (d + k) + N² R), N = U R.
  public static func aggregate(_ factors: ModuleFactors, geometry: ModuleGeometry) -> ModuleEstimate {
    combine(factors, geometry: geometry, p: factors.weights, q: factors.weights)
  }

  /// `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u` (shared by FedAvg and FLoRA-NA), with its residual.
  static func combine(_ factors: ModuleFactors, geometry: ModuleGeometry, p: [Double], q: [Double]) -> ModuleEstimate {
    let (a, b) = sum(factors, p: p, q: q)
    let r = geometry.rank
    let ca = ModuleGeometry.blocks(p, rank: r).transposed
    let cb = ModuleGeometry.blocks(q, rank: r)
    return ModuleEstimate(a: a, b: b, residual: geometry.residualNorm(cb: cb, ca: ca), p: p, q: q)
  }

  /// The weighted sums of the zero-padded factors alone, `Ah = sum p_u A_u`, `Bh = sum q_u Bs_u`: one
  /// pass over them, no Gram work (a GEMM with the block coefficient matrices would do r times the
  /// work).
  /// - Parameters:
  ///   - factors: the module's stacked factors.
  ///   - p: one coefficient per client for `A`.
  ///   - q: one coefficient per client for `B`.
  /// - Returns: `Ah` `[R, k]` and `Bh` `[d, R]`.
  /// - Complexity: O(sum r_u (d + k)).
  public static func sum(_ factors: ModuleFactors, p: [Double], q: [Double]) -> (a: Matrix, b: Matrix) {
    let (r, n, ranks) = (factors.maxRank, factors.stackedB.cols, factors.ranks)
    var a = Matrix(zeros: r, factors.k)
    var b = Matrix(zeros: factors.d, r)
    a.values.withUnsafeMutableBufferPointer { a in
      factors.stackedA.values.withUnsafeBufferPointer { stack in
        // A_u fills the top r_u rows: client by client, as the streamed sums add them.
        for (u, ru) in ranks.enumerated() where ru > 0 {
          DoubleKernels.axpy(
            stack.baseAddress! + u * r * factors.k, count: ru * factors.k, a: p[u], into: a.baseAddress!)
        }
      }
    }
    b.values.withUnsafeMutableBufferPointer { b in
      factors.stackedB.values.withUnsafeBufferPointer { stack in
        // Bs_u fills the left r_u columns, a row at a time, clients in order in each element.
        for row in 0..<factors.d {
          let (from, to) = (stack.baseAddress! + row * n, b.baseAddress! + row * r)
          for (u, ru) in ranks.enumerated() where ru > 0 {
            let (qu, block) = (q[u], from + u * r)
            for j in 0..<ru { to[j] += qu * block[j] }
          }
        }
      }
    }
    return (a, b)
  }
}

extension FedAvg {
  /// `Ah = sum w_u A_u`, `Bh = sum w_u s_u B_u` of `module` streamed from the clients' files: each
  /// factor is widened a slice at a time and added into the fp64 sums, never held whole in
  /// fp64 (what `merge --no-errors` does, at the speed of reading the factors). The arithmetic
  /// is `sum(ModuleFactors(...))`'s, term for term, so the bytes written are the same.
  ///
  /// - Parameters:
  ///   - set: the clients, with their weights.
  ///   - module: the module's name.
  /// - Returns: `Ah` `[R, k]` and `Bh` `[d, R]`.
  /// - Throws: `AdapterError`: `not-adapted` when no client has the module, `non-finite` naming the
  ///   client whose factor holds NaN or infinity, `unsupported-dtype` for a factor that is not numbers,
  ///   or a read error.
  /// - Complexity: O(bytes of the clients' factors), read once a slice at a time; memory O(R (d + k))
  ///   for the sums.
  public static func streamedSum(_ set: ClientSet, module: String) throws(AdapterError) -> (a: Matrix, b: Matrix) {
    let entries = set.modules(named: module)
    guard let shape = entries.compactMap({ $0?.updateShape }).first else {
      throw .notAdapted(module: module)
    }
    let (d, k) = (shape[0], shape[1])
    let r = entries.compactMap { $0?.rank }.max() ?? 0
    var a = Matrix(zeros: r, k)
    var b = Matrix(zeros: d, r)
    for ((client, entry), weight) in zip(zip(set.clients, entries), set.weights) {
      guard let entry else { continue }
      for tensor in [entry.a, entry.b] where !tensor.dtype.isComputable {
        throw .checkpoint(
          .unsupportedDType(
            path: tensor.file.path, tensor: tensor.name, dtype: tensor.dtype.rawValue, operation: "convert to numbers"))
      }
      let ru = entry.rank
      // Stored row `j` of `B` is Hugging Face row `target[j]` (llama.cpp's q/k order undone).
      let target = entry.bStoredRowTargets
      let scale = entry.scale
      var finite = true
      try AdapterError.wrap { () throws(CheckpointError) in
        try a.values.withUnsafeMutableBufferPointer { a throws(CheckpointError) in
          // `A_u` fills the top ru rows of `Ah`, element for element.
          try entry.a.forEachSlice { range, raw in
            finite =
              DoubleKernels.accumulate(
                raw.baseAddress!, dtype: entry.a.dtype, count: range.count, scale: 1, weight: weight,
                into: a.baseAddress! + range.lowerBound) && finite
          }
        }
        try b.values.withUnsafeMutableBufferPointer { b throws(CheckpointError) in
          // `B_u` fills the left ru columns: one run when they are all of them in stored order.
          guard ru != r || target != nil else {
            return try entry.b.forEachSlice { range, raw in
              finite =
                DoubleKernels.accumulate(
                  raw.baseAddress!, dtype: entry.b.dtype, count: range.count, scale: scale, weight: weight,
                  into: b.baseAddress! + range.lowerBound) && finite
            }
          }
          // Else a row (or the part of one a slice holds) at a time, from the values widened to
          // Float (a row of a block-quantised factor need not start at a block).
          try entry.b.forEachWidenedSlice { range, _, values in
            var (row, column) = (range.lowerBound / ru, range.lowerBound % ru)
            var e = 0
            while e < values.count {
              let count = min(ru - column, values.count - e)
              finite =
                DoubleKernels.accumulate(
                  values.baseAddress! + e, dtype: .f32, count: count, scale: scale, weight: weight,
                  into: b.baseAddress! + (target?[row] ?? row) * r + column) && finite
              (e, column) = (e + count, column + count)
              if column == ru { (row, column) = (row + 1, 0) }
            }
          }
        }
      }
      guard finite else { throw .nonFinite(client: client.path, module: module) }
    }
    return (a, b)
  }
}
