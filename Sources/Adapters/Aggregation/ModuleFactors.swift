import Checkpoints

/// One adapted weight's factors from every client, widened to fp64 and scale-folded, held as
/// the two stacks the Gram blocks are computed from: with `R` the clients' largest rank and
/// `N = U R`, `stackedA` is `[A_1; ...; A_U]` `[N, k]` and `stackedB` is `[Bs_1, ..., Bs_U]`
/// `[d, N]` (`Bs_u = s_u B_u`), client `u`'s block at `u R`, zero-padded to `R` (a client
/// without the module is all zeros). Widened straight into them from the stored bytes.
public struct ModuleFactors: Sendable {
  /// The module's name.
  public let name: String
  /// `d`, the update's rows (out features).
  public let d: Int
  /// `k`, the update's columns (in features).
  public let k: Int
  /// Each client's rank `r_u` (0 for a client without the module).
  public let ranks: [Int]
  /// The client weights `w_u`.
  public let weights: [Double]
  /// `[A_1; ...; A_U]` `[N, k]`, each block zero-padded to `maxRank` rows.
  public let stackedA: Matrix
  /// `[Bs_1, ..., Bs_U]` `[d, N]`, each block zero-padded to `maxRank` columns.
  public let stackedB: Matrix

  /// The clients' largest rank `R`, 0 without clients.
  public var maxRank: Int { ranks.max() ?? 0 }
  /// `A_u` `[r_u, k]` per client, in client order (copies out of the stack).
  public var a: [Matrix] { ranks.indices.map { u in stackedA.rows((u * maxRank)..<(u * maxRank + ranks[u])) } }
  /// `Bs_u = s_u B_u` `[d, r_u]` per client, in client order (copies out of the stack).
  public var bs: [Matrix] { ranks.indices.map { u in stackedB.columns((u * maxRank)..<(u * maxRank + ranks[u])) } }

  /// Factors as given, stacked and zero-padded to the largest rank (for tests and callers that hold
  /// matrices already).
  /// - Parameters:
  ///   - name: the module's name.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  ///   - a: each client's `A_u` `[r_u, k]`.
  ///   - bs: each client's `Bs_u = s_u B_u` `[d, r_u]`, in the same order (a precondition: one per
  ///     `A_u`, shapes matching).
  ///   - weights: each client's weight, in the same order.
  /// - Complexity: O(U R (d + k)) time and memory for U clients of largest rank R.
  public init(name: String, d: Int, k: Int, a: [Matrix], bs: [Matrix], weights: [Double]) {
    precondition(a.count == bs.count && a.count == weights.count, "one A, one Bs and one weight per client")
    precondition(
      zip(a, bs).allSatisfy { $0.cols == k && $1.rows == d && $0.rows == $1.cols }, "A_u [r_u, k] and Bs_u [d, r_u]")
    let ranks = a.map(\.rows)
    let r = ranks.max() ?? 0
    var stackedA = Matrix(zeros: a.count * r, k)
    var stackedB = Matrix(zeros: d, a.count * r)
    for (u, (au, bu)) in zip(a, bs).enumerated() {
      for i in 0..<au.rows { for j in 0..<k { stackedA[u * r + i, j] = au[i, j] } }
      for i in 0..<d { for j in 0..<bu.cols { stackedB[i, u * r + j] = bu[i, j] } }
    }
    self.init(name: name, d: d, k: k, ranks: ranks, weights: weights, stackedA: stackedA, stackedB: stackedB)
  }

  private init(name: String, d: Int, k: Int, ranks: [Int], weights: [Double], stackedA: Matrix, stackedB: Matrix) {
    self.name = name
    self.d = d
    self.k = k
    self.ranks = ranks
    self.weights = weights
    self.stackedA = stackedA
    self.stackedB = stackedB
  }

  /// Reads and widens the factors of `module` from every client into the stacks, scale folded into B
  /// and llama.cpp's q/k row order undone.
  /// - Parameters:
  ///   - set: the clients.
  ///   - module: the module's name.
  /// - Throws: ``AdapterError``: `not-adapted` when no client has the module, `non-finite` naming the
  ///   client whose factors hold NaN or infinity, and a ``AdapterError/checkpoint(_:)`` error when a
  ///   file cannot be read.
  /// - Complexity: O(U R (d + k)) time and memory: every client's factors are read once from disk and
  ///   widened to fp64.
  public init(_ set: ClientSet, module: String) throws(AdapterError) {
    let found = set.modules(named: module)
    guard let shape = found.compactMap({ $0?.updateShape }).first else {
      throw .notAdapted(module: module)
    }
    let (d, k) = (shape[0], shape[1])
    let ranks = found.map { $0?.rank ?? 0 }
    let r = ranks.max() ?? 0
    let n = found.count * r
    var stackedA = Matrix(zeros: n, k)
    var stackedB = Matrix(zeros: d, n)
    for (u, (client, entry)) in zip(set.clients, found).enumerated() {
      guard let entry else { continue }
      let finite = try AdapterError.wrap { () throws(CheckpointError) in
        try stackedA.values.withUnsafeMutableBufferPointer { a throws(CheckpointError) in
          try stackedB.values.withUnsafeMutableBufferPointer { b throws(CheckpointError) in
            // Client u's block: rows u r ..< u r + r_u of the A stack, columns from u r of the B stack.
            try entry.widen(
              intoA: UnsafeMutableBufferPointer(rebasing: a[(u * r * k)..<((u * r + entry.rank) * k)]),
              b: UnsafeMutableBufferPointer(rebasing: b[(u * r)...]), bStride: n)
          }
        }
      }
      guard finite else { throw .nonFinite(client: client.path, module: module) }
    }
    self.init(name: module, d: d, k: k, ranks: ranks, weights: set.weights, stackedA: stackedA, stackedB: stackedB)
  }

  /// `[A_1; ...; A_U]` and `[c_1 Bs_1, ..., c_U Bs_U]` without padding (`sum r_u` rows and columns):
  /// the stacking rule's factors.
  /// - Parameter coefficients: `c_u` per client (the weights, for ``Stack``).
  /// - Returns: `A` `[sum r_u, k]` and `B` `[d, sum r_u]`.
  /// - Complexity: O((sum r_u)(d + k)).
  public func stacked(coefficients: [Double]) -> (a: Matrix, b: Matrix) {
    let r = maxRank
    let blocks = ranks.indices.filter { ranks[$0] > 0 }
    let rows = blocks.flatMap { u in (u * r)..<(u * r + ranks[u]) }
    var b = Matrix(zeros: d, rows.count)
    b.values.withUnsafeMutableBufferPointer { out in
      stackedB.values.withUnsafeBufferPointer { stack in
        for i in 0..<d {
          var column = 0
          for u in blocks {
            let c = coefficients[u]
            for j in 0..<ranks[u] { out[i * rows.count + column + j] = c * stack[i * stackedB.cols + u * r + j] }
            column += ranks[u]
          }
        }
      }
    }
    let a = rows.count == stackedA.rows ? stackedA : stackedA.rows(in: rows)
    return (a, b)
  }
}
