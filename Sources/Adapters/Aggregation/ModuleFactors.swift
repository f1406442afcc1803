import Checkpoints

/// One adapted weight's factors from every client, widened to fp64 and scale-folded:
/// `a[u]` is `A_u` `[r_u, k]`, `bs[u]` is `s_u B_u` `[d, r_u]` (rank 0 for an absent module).
public struct ModuleFactors: Sendable {
  /// The module's name.
  public let name: String
  /// `d`, the update's rows (out features).
  public let d: Int
  /// `k`, the update's columns (in features).
  public let k: Int
  /// `A_u` `[r_u, k]` per client, in client order.
  public let a: [Matrix]
  /// `Bs_u = s_u B_u` `[d, r_u]` per client, in client order.
  public let bs: [Matrix]
  /// The client weights `w_u`.
  public let weights: [Double]

  /// Each client's rank `r_u` (0 for a client without the module).
  public var ranks: [Int] { a.map(\.rows) }
  /// The clients' largest rank, 0 without clients.
  public var maxRank: Int { ranks.max() ?? 0 }

  /// Factors as given: `a`, `bs` and `weights` hold one entry per client, in one order.
  public init(name: String, d: Int, k: Int, a: [Matrix], bs: [Matrix], weights: [Double]) {
    self.name = name
    self.d = d
    self.k = k
    self.a = a
    self.bs = bs
    self.weights = weights
  }

  /// Reads and widens the factors of `module` from every client.
  public init(_ set: ClientSet, module: String) throws(AdapterError) {
    let found = set.modules(named: module)
    guard let shape = found.compactMap({ $0?.updateShape }).first else {
      throw .notAdapted(module: module)
    }
    var a: [Matrix] = []
    var bs: [Matrix] = []
    for (client, entry) in zip(set.clients, found) {
      guard let entry else {
        a.append(Matrix(zeros: 0, shape[1]))
        bs.append(Matrix(zeros: shape[0], 0))
        continue
      }
      guard let factors = try AdapterError.wrap({ () throws(CheckpointError) in try entry.widenedFactors() }) else {
        throw .nonFinite(client: client.path, module: module)
      }
      a.append(factors.a)
      bs.append(factors.bs)
    }
    self.init(name: module, d: shape[0], k: shape[1], a: a, bs: bs, weights: set.weights)
  }

  /// `[A_1; ...; A_U]`, each zero-padded to `rank` rows when given (else stacked as they are).
  public func stackedA(paddedTo rank: Int? = nil) -> Matrix {
    let blockRows = ranks.map { rank ?? $0 }
    var out = Matrix(zeros: blockRows.reduce(0, +), k)
    out.values.withUnsafeMutableBufferPointer { target in
      var offset = 0
      for (u, block) in a.enumerated() {
        // Row-major blocks of whole rows: one contiguous copy each.
        block.values.withUnsafeBufferPointer { source in
          if let base = source.baseAddress, let start = target.baseAddress, !source.isEmpty {
            (start + offset).update(from: base, count: source.count)
          }
        }
        offset += blockRows[u] * k
      }
    }
    return out
  }

  /// `[c_1 Bs_1, ..., c_U Bs_U]`, each zero-padded to `rank` columns when given.
  public func stackedB(paddedTo rank: Int? = nil, coefficients: [Double]? = nil) -> Matrix {
    let blockCols = ranks.map { rank ?? $0 }
    let width = blockCols.reduce(0, +)
    var out = Matrix(zeros: d, width)
    out.values.withUnsafeMutableBufferPointer { target in
      var column = 0
      for (u, block) in bs.enumerated() {
        let c = coefficients?[u] ?? 1
        let cols = block.cols
        block.values.withUnsafeBufferPointer { source in
          guard let from = source.baseAddress, let to = target.baseAddress, cols > 0 else { return }
          for i in 0..<d {
            let (row, out) = (from + i * cols, to + i * width + column)
            if c == 1 { out.update(from: row, count: cols) } else { for j in 0..<cols { out[j] = c * row[j] } }
          }
        }
        column += blockCols[u]
      }
    }
    return out
  }
}
