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
  }

  /// What an audited adapter is, judged by its model-level error.
  public enum Verdict: String, Sendable {
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

    /// `rounded`: each rule's error with its factors in the audited dtype (a rule left out counts as unchanged).
    public init(against: Double, fedavg: Double, floraNA: Double, floor: Double, rounded: [Rule: Double]) {
      (self.against, self.fedavg, self.floraNA, self.floor) = (against, fedavg, floraNA, floor)
      let exact: [Rule: Double] = [.fedavg: fedavg, .floraNA: floraNA, .floor: floor]
      var tolerances: [Rule: Double] = [:]
      for (rule, value) in exact {
        tolerances[rule] = max(Audit.minimumTolerance, 2 * abs((rounded[rule] ?? value) - value))
      }
      self.tolerances = tolerances
    }

    /// `rule`'s tolerance, at least ``Audit/minimumTolerance``.
    public func tolerance(_ rule: Rule) -> Double { tolerances[rule] ?? Audit.minimumTolerance }

    /// Where the audited adapter's error places it among FLoRA-NA, FedAvg and the zero update.
    public var verdict: Verdict {
      if against >= Audit.notAnAggregateThreshold { return .notAnAggregate }
      if against <= floraNA + tolerance(.floraNA) { return .asGoodAsFloraNA }
      if against < fedavg - tolerance(.fedavg) { return .betweenFedAvgAndFloraNA }
      return .noBetterThanFedAvg
    }

    /// `rule`'s error.
    public func error(of rule: Rule) -> Double {
      switch rule {
      case .fedavg: fedavg
      case .floraNA: floraNA
      case .floor: floor
      }
    }

    /// Whether the audited adapter is no worse than `rule` beyond the rule's tolerance.
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

  /// Chooses the weights: the ones given, else those `recorded` in the audited adapter when its
  /// clients are these (matched by SHA-256, in any order; by position for records without
  /// digests), else uniform. Mismatches between the record and the clients are warnings.
  public static func weighting(
    given: WeightSpec, clients: [Adapter], recorded: AdapterWriter.Provenance?, auditedPath: String
  ) throws(CheckpointError) -> Weighting {
    guard let recorded else {
      return Weighting(spec: given, normalize: true, source: given == .uniform ? "uniform" : "given", warnings: [])
    }
    var warnings: [String] = []
    var order: [Int]?  // recorded index of each given client
    if recorded.digests.count == recorded.clients.count, !recorded.digests.isEmpty {
      var digests: [String] = []
      for client in clients { digests.append(try client.weightDigest()) }
      let found = digests.map { recorded.digests.firstIndex(of: $0) }
      for (client, index) in zip(clients, found) where index == nil {
        warnings.append(
          "\(client.path) is none of the clients \(auditedPath) records (its SHA-256 differs from all \(recorded.digests.count))"
        )
      }
      let matched = found.compactMap { $0 }
      if matched.count == clients.count, Set(matched).count == matched.count, matched.count == recorded.clients.count {
        order = matched
      }
    } else if recorded.clients.count == clients.count {
      order = Array(clients.indices)  // an older record: no digests, matched by position
    }
    if recorded.clients.count != clients.count {
      warnings.append("\(auditedPath) records \(recorded.clients.count) clients, \(clients.count) are given")
    }
    let weights = order.map { $0.map { recorded.weights[$0] } }
    guard given == .uniform else {
      if let weights, !sameWeights(given, weights, count: clients.count) {
        warnings.append(
          "the weights given differ from those \(auditedPath) records (\(weights.map { "\($0)" }.joined(separator: ", "))): the audit uses the given ones"
        )
      }
      return Weighting(spec: given, normalize: true, source: "given", warnings: warnings)
    }
    guard let weights else { return Weighting(spec: .uniform, normalize: true, source: "uniform", warnings: warnings) }
    return Weighting(spec: .weights(weights), normalize: false, source: "recorded", warnings: warnings)
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
