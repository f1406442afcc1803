/// One rule of aggregation.md: the rank it writes for a module, and the factors it writes.
/// One type per rule (``FedAvg``, ``FloraNA``, ``SVDOptimal``, ``Stack``); a ``Merge`` lays out
/// its output from `outputRank` and checks every solved module against that layout.
public protocol AggregationRule: Sendable {
  /// The rank written for a module whose clients (those that have it) hold `ranks`, of update
  /// shape `[d, k]`. `svd` may lower it further for a module whose update has lower rank
  /// (``Merge/outputRanks``).
  func outputRank(clientRanks ranks: [Int], d: Int, k: Int) -> Int

  /// The module's factors at `rank`, with their residual when `geometry` is given. Rules that
  /// solve on the Gram blocks (``AggregationMethod/solvesOnGrams``) are always given it.
  func aggregate(_ factors: ModuleFactors, geometry: ModuleGeometry?, rank: Int) -> ModuleEstimate

  /// The factors computed straight from the clients' files, without widening them whole
  /// first, when the rule can (FedAvg without errors); nil otherwise.
  func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate?
}

extension AggregationRule {
  /// Rules stream nothing by default: nil.
  public func streamed(_ set: ClientSet, module: String) throws(AdapterError) -> ModuleEstimate? { nil }
}
