/// Options of an adapter merge.
public struct MergeOptions: Sendable {
  /// The aggregation method.
  public var method: AggregationMethod
  /// Output rank for `svd` (default: the clients' largest rank); refused by the other methods.
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
  /// - Parameter method: the aggregation method, such as ``AggregationMethod/floraNA``.
  public init(method: AggregationMethod) { self.method = method }

  /// What the method's declarations refuse in these options (the CLI words each for its flags).
  public enum Problem: Sendable, Equatable {
    /// The method writes merged base weights: a base is needed.
    case needsBase
    /// The method does not take the option.
    case notAccepted(MergeOption)
    /// A rank that is not positive.
    case rankNotPositive
    /// Errors cannot be skipped: the method solves on the Gram blocks they come from.
    case errorsRequired
  }

  /// Every problem of these options as the method's declarations see them, in a fixed order;
  /// `sharedCoefficients` and `flora` count as given when they differ from the defaults. The CLI words
  /// each for its flags; ``check(withBase:)`` throws the first.
  /// - Parameter withBase: whether the merge goes into base weights.
  /// - Returns: the problems; empty when the options are fine.
  public func problems(withBase: Bool) -> [Problem] {
    let type = method.type
    var problems: [Problem] = []
    if type.needsBase, !withBase { problems.append(.needsBase) }
    if !computeErrors, !type.canSkipErrors { problems.append(.errorsRequired) }
    if let rank {
      if !type.acceptedOptions.contains(.rank) { problems.append(.notAccepted(.rank)) }
      if rank <= 0 { problems.append(.rankNotPositive) }
    }
    if sharedCoefficients, !type.acceptedOptions.contains(.scope) { problems.append(.notAccepted(.scope)) }
    if flora.maxIterations != FloraNA.Options().maxIterations, !type.acceptedOptions.contains(.maxIterations) {
      problems.append(.notAccepted(.maxIterations))
    }
    return problems
  }

  /// Throws the first of ``problems(withBase:)``.
  /// - Parameter withBase: whether the merge goes into base weights.
  /// - Throws: `AdapterError.needsBase`, or `.badOption` naming what is refused.
  public func check(withBase: Bool) throws(AdapterError) {
    guard let problem = problems(withBase: withBase).first else { return }
    let name = method.rawValue
    switch problem {
    case .needsBase: throw .needsBase(method: name)
    case .errorsRequired:
      throw .badOption(message: "\(name) solves on the Gram blocks the errors come from: it always computes them")
    case .notAccepted(.rank): throw .badOption(message: "a rank is used by the svd rule only, not by \(name)")
    case let .notAccepted(option): throw .badOption(message: "\(option.rawValue) is not an option of \(name)")
    case .rankNotPositive: throw .badOption(message: "the rank must be positive")
    }
  }
}
