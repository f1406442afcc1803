import Checkpoints

/// What an audit is asked: the weights to judge with, the floor's rank, the rule the audited
/// adapter is expected to match and the provenance mismatches to overlook.
public struct AuditOptions {
  /// The clients' weights; `.uniform` lets the audited adapter's recorded weights apply.
  public var weights: WeightSpec
  /// The rank of the floor (`nil`: the clients' largest).
  public var rank: Int?
  /// The rule the audited adapter must be no worse than (`nil`: no gate, only a verdict).
  public var expect: Audit.Rule?
  /// Provenance mismatches that do not fail the gate.
  public var waived: Set<ProvenanceCheck.Mismatch>
  /// A module a client lacks counts as a zero update from it.
  public var allowMissing: Bool
  /// Clients naming different base models are compared anyway.
  public var allowDifferentBases: Bool
  /// The modules compared (all by default).
  public var modules: (String) -> Bool

  /// Options of an audit, each at its default unless given.
  /// - Parameters:
  ///   - weights: the clients' weights; `.uniform` lets the recorded weights apply.
  ///   - rank: the rank of the floor; `nil` for the clients' largest.
  ///   - expect: the rule the gate checks; `nil` for none.
  ///   - waived: provenance mismatches the gate overlooks.
  ///   - allowMissing: a module a client lacks counts as a zero update.
  ///   - allowDifferentBases: clients naming different base models are compared anyway.
  ///   - modules: which modules to compare.
  public init(
    weights: WeightSpec = .uniform, rank: Int? = nil, expect: Audit.Rule? = nil,
    waived: Set<ProvenanceCheck.Mismatch> = [], allowMissing: Bool = false, allowDifferentBases: Bool = false,
    modules: @escaping (String) -> Bool = { _ in true }
  ) {
    (self.weights, self.rank, self.expect, self.waived) = (weights, rank, expect, waived)
    (self.allowMissing, self.allowDifferentBases, self.modules) = (allowMissing, allowDifferentBases, modules)
  }
}

/// The result of ``Audit/run(clients:against:options:warn:)``: each module's comparison, the
/// model-level errors, the weights and provenance they rest on, the verdict and the gate's
/// outcome. Rendering it (text, tables, documents) is the caller's.
public struct AuditReport: Sendable {
  /// The model-level relative errors (nil where `T = 0` on every module, or no module).
  public struct Totals: Sendable {
    /// FedAvg's.
    public let fedavg: Double?
    /// FLoRA-NA's (its coefficients solved per module).
    public let floraNA: Double?
    /// The rank-R floor's.
    public let floor: Double?
    /// The audited adapter's; nil without one.
    public let against: Double?
  }

  /// Why the `expect` gate failed: the first failure in the order an auditor asks (is it
  /// judgeable, is it the merge it claims to be, does it cover only the clients' modules, is it
  /// as close as the rule, is it the rule it records).
  public enum Failure: Sendable, Equatable, CustomStringConvertible {
    /// No model-level error to judge (no module selected, or `T = 0`).
    case unverifiable
    /// The record disagrees with what was given (`.clients` or `.weights` before the numbers,
    /// `.method` after them), and the mismatch is not waived.
    case provenanceMismatch(ProvenanceCheck.Mismatch)
    /// The audited adapter changes tensors or modules no client adapts (`first`, of `count`).
    case uncovered(first: String, count: Int)
    /// Its error is worse than the rule's by more than the rule's tolerance.
    case worseThanExpected(Audit.Rule)

    /// The failure in words, without the figures (a report renders those).
    public var description: String {
      switch self {
      case .unverifiable: "no model-level error to judge (no module selected, or T = 0)"
      case let .provenanceMismatch(mismatch): "the recorded \(mismatch.rawValue) are not the ones given"
      case let .uncovered(first, count): "changes \(first) (and \(count - 1) more) that no client adapts"
      case let .worseThanExpected(rule): "worse than \(rule.rawValue) by more than the tolerance"
      }
    }
  }

  /// The clients, with the weights the audit used.
  public let clients: ClientSet
  /// The audited adapter's path; nil without one.
  public let auditedPath: String?
  /// The weights chosen and where they come from.
  public let weighting: Audit.Weighting
  /// The audited adapter's record against the clients, weights and rule given.
  public let provenance: ProvenanceCheck
  /// One comparison per module selected, in the clients' module order.
  public let rows: [ModuleComparison]
  /// The model-level errors.
  public let totals: Totals
  /// The audited adapter's errors and tolerances; nil without one or without a model-level error.
  public let errors: Audit.Errors?
  /// The rank of the floor.
  public let floorRank: Int
  /// The audited adapter's largest rank over the modules selected.
  public let auditedRank: Int?
  /// Tensors and modules the audited adapter changes that no client adapts.
  public let uncovered: [String]
  /// The rule the gate checked; nil without one.
  public let expectation: Audit.Rule?
  /// The provenance mismatches found and waived.
  public let waived: [ProvenanceCheck.Mismatch]
  /// The gate's failure; nil when it passed or there was no gate.
  public let failure: Failure?
  /// The warnings, in the order they arose.
  public let warnings: [String]

  /// Where the audited adapter's error places it; nil without one.
  public var verdict: Audit.Verdict? { errors?.verdict }

  /// Whether the gate passed; nil without a gate or without errors to judge.
  public var expectationMet: Bool? { expectation != nil && errors != nil ? failure == nil : nil }
}
