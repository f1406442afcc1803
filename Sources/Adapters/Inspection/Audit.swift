import Checkpoints

/// The audit of an adapter someone produced against the clients it claims to aggregate: which
/// weights to judge it with, whether the clients are the ones it records, and a verdict an
/// auditor can gate on.
public enum Audit {
  /// The rules an audited adapter can be expected to match.
  public enum Rule: String, Sendable, CaseIterable {
    case fedavg
    case floraNA = "flora-na"
    case floor

    /// The rule's key in JSON documents (`flora_na`: JSON keys use underscores).
    public var jsonKey: String { String(rawValue.map { $0 == "-" ? "_" : $0 }) }
  }

  /// What an audited adapter is, judged by its model-level error.
  public enum Verdict: String, Sendable {
    /// At the rank-R floor (within its tolerance) or below it: no adapter of the floor's rank does better.
    case optimalAtRank = "optimal-at-rank"
    case asGoodAsFloraNA = "as-good-as-flora-na"
    case betweenFedAvgAndFloraNA = "between-fedavg-and-flora-na"
    case noBetterThanFedAvg = "no-better-than-fedavg"
    /// No closer to `T` than the zero update: whatever it is, it does not aggregate these clients.
    case notAnAggregate = "not-an-aggregate"
  }

  /// An adapter whose relative error to `T` is at least this is no closer to the ideal update
  /// than adding nothing (relative error 1): not an aggregate of these clients.
  public static let notAnAggregateThreshold = 1.0

  /// The model-level errors of one audit (relative to `||T||`), with a tolerance per rule: how
  /// far storing that rule's factors in the audited adapter's dtype moves its error, twice over (measured,
  /// ``ModuleComparison/roundedFedavg`` and its siblings), at least ``minimumTolerance``. Two
  /// errors within it count as equal.
  public struct Errors: Sendable {
    /// The audited adapter's error.
    public let against: Double
    /// FedAvg's error.
    public let fedavg: Double
    /// FLoRA-NA's error.
    public let floraNA: Double
    /// The rank-R floor: no rank-R adapter's error is lower.
    public let floor: Double
    /// Each rule's tolerance; see ``tolerance(_:)``.
    public let tolerances: [Rule: Double]

    /// The errors of one audit, each rule's tolerance twice the change its factors' rounding makes (at
    /// least ``Audit/minimumTolerance``).
    /// - Parameters:
    ///   - against: the audited adapter's relative error.
    ///   - fedavg: FedAvg's.
    ///   - floraNA: FLoRA-NA's.
    ///   - floor: the rank-R floor's.
    ///   - rounded: each rule's error with its factors in the audited dtype (a rule left out counts as
    ///     unchanged).
    public init(against: Double, fedavg: Double, floraNA: Double, floor: Double, rounded: [Rule: Double]) {
      (self.against, self.fedavg, self.floraNA, self.floor) = (against, fedavg, floraNA, floor)
      let exact: [Rule: Double] = [.fedavg: fedavg, .floraNA: floraNA, .floor: floor]
      var tolerances: [Rule: Double] = [:]
      for (rule, value) in exact {
        tolerances[rule] = max(Audit.minimumTolerance, 2 * abs((rounded[rule] ?? value) - value))
      }
      self.tolerances = tolerances
    }

    /// `rule`'s tolerance: two errors closer than it count as equal.
    /// - Parameter rule: a rule.
    /// - Returns: the tolerance, at least ``Audit/minimumTolerance``.
    public func tolerance(_ rule: Rule) -> Double { tolerances[rule] ?? Audit.minimumTolerance }

    /// Where the audited adapter's error places it among FLoRA-NA, FedAvg and the zero update.
    public var verdict: Verdict {
      if against >= Audit.notAnAggregateThreshold { return .notAnAggregate }
      if against <= floor + tolerance(.floor) { return .optimalAtRank }
      if against <= floraNA + tolerance(.floraNA) { return .asGoodAsFloraNA }
      if against < fedavg - tolerance(.fedavg) { return .betweenFedAvgAndFloraNA }
      return .noBetterThanFedAvg
    }

    /// `rule`'s model-level relative error.
    /// - Parameter rule: a rule.
    /// - Returns: the error.
    public func error(of rule: Rule) -> Double {
      switch rule {
      case .fedavg: fedavg
      case .floraNA: floraNA
      case .floor: floor
      }
    }

    /// Whether the audited adapter is no worse than `rule` beyond the rule's tolerance.
    /// - Parameter rule: the rule the gate expects.
    /// - Returns: whether the audited error is at most the rule's plus its tolerance.
    public func meets(_ rule: Rule) -> Bool { against <= error(of: rule) + tolerance(rule) }
  }

  /// Errors closer than this (relative to `||T||`) are equal: the resolution of the fp64 Gram
  /// route of every error.
  public static let minimumTolerance = 1e-9

  /// The weights an audit uses and what the audited adapter's record says about the clients.
  public struct Weighting: Sendable {
    /// The weights to build the client set with (as given: already what the merge used).
    public let spec: WeightSpec
    /// Whether the client set normalises `spec`: false for recorded weights, already the ones used.
    public let normalize: Bool
    /// Where they come from: "given", "recorded" or "uniform".
    public let source: String
    /// Mismatches between the record and the clients given.
    public let warnings: [String]
  }

  /// Chooses the weights: the ones given, else those recorded in the audited adapter when its
  /// clients are exactly these (``ProvenanceCheck/recordedWeights``), else uniform. Mismatches
  /// between the record and the clients are also warnings, for a reader of the text.
  /// - Parameters:
  ///   - given: the weights the auditor gave (`.uniform` when none).
  ///   - provenance: the check of the audited adapter's record against the clients.
  ///   - auditedPath: the audited adapter's path, for the warnings.
  /// - Returns: the weights, whether to normalise them, their source and the warnings.
  public static func weighting(given: WeightSpec, provenance: ProvenanceCheck, auditedPath: String) -> Weighting {
    guard let record = provenance.record else {
      return Weighting(spec: given, normalize: true, source: given == .uniform ? "uniform" : "given", warnings: [])
    }
    let hashed = !record.digests.isEmpty
    var warnings = provenance.unknown.map { path in
      "\(path) is none of the clients \(auditedPath) records"
        + (hashed ? " (its SHA-256 differs from all \(record.digests.count))" : " (no client of that path)")
    }
    let givenCount = provenance.matched.count + provenance.unknown.count
    if record.clients.count != givenCount {
      warnings.append("\(auditedPath) records \(record.clients.count) clients, \(givenCount) are given")
    }
    guard given == .uniform else {
      if provenance.weightsMatch == false, let recorded = provenance.recordedWeights {
        warnings.append(
          "the weights given differ from those \(auditedPath) records (\(recorded.map { "\($0)" }.joined(separator: ", "))): the audit uses the given ones"
        )
      }
      return Weighting(spec: given, normalize: true, source: "given", warnings: warnings)
    }
    guard let recorded = provenance.recordedWeights else {
      return Weighting(spec: .uniform, normalize: true, source: "uniform", warnings: warnings)
    }
    return Weighting(spec: .weights(recorded), normalize: false, source: "recorded", warnings: warnings)
  }

  /// Whether a given weight spec normalises to `recorded` (normalised too), to 1e-9.
  static func sameWeights(_ spec: WeightSpec, _ recorded: [Double], count: Int) -> Bool {
    let values: [Double]
    switch spec {
    case .uniform: values = [Double](repeating: 1, count: count)
    case let .weights(v), let .samples(v): values = v
    }
    let (a, b) = (values.reduce(0, +), recorded.reduce(0, +))
    guard values.count == recorded.count, a > 0, b > 0 else { return false }
    return zip(values, recorded).allSatisfy { abs($0 / a - $1 / b) <= 1e-9 }
  }
}
