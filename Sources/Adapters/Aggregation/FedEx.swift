extension AggregationMethod {
  /// FedEx-LoRA (``FedEx``).
  public static let fedex = AggregationMethod(FedEx.self)
}

/// FedEx-LoRA: the FedAvg adapter, and a base carrying the exact residual,
/// `W0' = W0 + (T - Bh_avg Ah_avg)`, so that base plus adapter is `W0 + T` exactly. Writes both.
public struct FedEx: MergeMethod {
  /// `fedex`.
  public static let name = "fedex"
  /// A merged base and the FedAvg adapter beside it.
  public static let writes = MethodOutput.baseAndAdapter
  /// Its adapter is FedAvg's: zero-padded to the largest rank.
  public static let zeroPadsRanks = true
  /// The adapter carries the bias update, so the base does not.
  public static let foldsBiasIntoBase = false

  /// FedEx has no options.
  public init() {}

  /// FedEx has no options.
  /// - Parameters:
  ///   - set: the clients (unused).
  ///   - options: the merge's options (unused).
  public init(_ set: ClientSet, options: MergeOptions) {}

  /// FedAvg's rank: the clients' largest.
  /// - Parameters:
  ///   - ranks: the ranks of the clients that have the module.
  ///   - d: the update's rows.
  ///   - k: the update's columns.
  /// - Returns: the largest of `ranks`.
  public func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int {
    FedAvg().outputRank(clientRanks: ranks, d: d, k: k)
  }

  /// FedAvg's factors: the adapter written beside the base.
  /// - Parameter input: the module's factors, and its geometry when errors are computed.
  /// - Returns: FedAvg's estimate.
  /// - Complexity: as FedAvg/solve(_:).
  public func solve(_ input: FactorsInput) -> ModuleEstimate { FedAvg().solve(input) }

  /// FedAvg's factors streamed from the files (FedAvg/streamedSum(_:module:)).
  /// - Parameters:
  ///   - set: the clients.
  ///   - module: the module's name.
  /// - Returns: FedAvg's factors, without a residual.
  /// - Throws: as FedAvg/streamedSum(_:module:).
  public func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate? {
    try FedAvg().streamed(set, module: module)
  }

  /// `T - Bh Ah` as one product: `[w_1 Bs_1, ..., -Bh] @ [A_1; ...; Ah]`, so that base plus adapter is
  /// `W0 + T`.
  /// - Parameters:
  ///   - estimate: FedAvg's solved factors.
  ///   - factors: the clients' factors.
  /// - Returns: `left` `[d, sum r_u + R]` and `right` `[sum r_u + R, k]`.
  /// - Complexity: O((sum r_u + R)(d + k)); the product itself is formed a row slice at a time by the
  ///   writer.
  public func baseUpdate(_ estimate: ModuleEstimate, factors: ModuleFactors) -> (left: Matrix, right: Matrix) {
    let exact = Stack.aggregate(factors)
    var left = Matrix(zeros: factors.d, exact.rank + estimate.rank)
    for i in 0..<factors.d {
      for j in 0..<exact.rank { left[i, j] = exact.b[i, j] }
      for j in 0..<estimate.rank { left[i, exact.rank + j] = -estimate.b[i, j] }
    }
    let right = Matrix(rows: exact.rank + estimate.rank, cols: factors.k, values: exact.a.values + estimate.a.values)
    return (left, right)
  }
}
