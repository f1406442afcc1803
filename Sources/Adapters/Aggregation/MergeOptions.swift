/// Options of an adapter merge.
public struct MergeOptions: Sendable {
  /// The aggregation rule.
  public var method: AggregationMethod
  /// Output rank for `svd` (default: the clients' largest rank); refused by the other rules.
  /// A module gets at most what it can hold: see ``Merge/outputRanks``.
  public var rank: Int?
  /// One FLoRA-NA `(p, q)` shared by all modules instead of one per module.
  public var sharedCoefficients = false
  /// FLoRA-NA's solver options (iterations, tolerance).
  public var flora = FloraNA.Options()
  /// Whether to compute each module's error and floor (the Gram blocks). Without, fedavg, stack,
  /// exact and fedex are a weighted sum of the factors and nothing more.
  public var computeErrors = true
  /// A plan only (`--dry-run`): the merge lays out its output but solves nothing, so neither
  /// FLoRA-NA's model-wide coefficients nor svd's per-module numerical clamp is computed (svd's
  /// ranks are then upper bounds). Such a merge cannot be solved.
  public var planOnly = false

  /// Options for `method`, every other one at its default.
  public init(method: AggregationMethod) { self.method = method }
}
