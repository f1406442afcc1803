import Checkpoints

/// Whether an audited adapter is the merge it claims to be: its recorded provenance (clients by
/// SHA-256, weights, method) against the clients, weights and rule an auditor gives. An audit
/// answers this before it judges how close the adapter comes to the ideal update.
public struct ProvenanceCheck: Sendable {
  /// A way the record and what the auditor gives disagree.
  public enum Mismatch: String, Sendable, CaseIterable {
    /// Clients the record lists are not given, or given clients are not in the record.
    case clients
    /// The weights given are not the recorded ones.
    case weights
    /// The recorded method is not the one `--expect` names.
    case method
  }

  /// What the audited adapter recorded; nil when it records nothing (it is judged on its numbers).
  public let record: AdapterWriter.Provenance?
  /// The given clients the record lists (their paths as given).
  public let matched: [String]
  /// The recorded clients no given client is (their recorded paths).
  public let missing: [String]
  /// The given clients the record does not list.
  public let unknown: [String]
  /// For each given client, its index in the record (nil when it is not there).
  public let recordIndex: [Int?]
  /// Whether the weights given are the recorded ones; nil when none were given or none recorded.
  public let weightsMatch: Bool?
  /// Whether the recorded method is the one expected; nil without a record or an expectation.
  public let methodMatches: Bool?

  /// Compares `record` with `clients` (matched by the SHA-256 of their weight files, in any
  /// order; by position, or else by path, for records without digests), the weights `given`
  /// and the rule `expected`.
  /// - Parameters:
  ///   - record: the audited adapter's record (``AdapterWriter/Provenance/init(recordedIn:)``), or nil.
  ///   - clients: the clients the auditor gives.
  ///   - given: the weights the auditor gives (`.uniform` when none).
  ///   - expected: the rule the gate expects, or nil.
  /// - Throws: `CheckpointError` when a client's weight file cannot be read to hash it.
  /// - Complexity: with a record holding digests, every client's weight file is hashed: O(bytes of the
  ///   clients); otherwise O(clients²) comparisons of paths.
  public init(
    record: AdapterWriter.Provenance?, clients: [Adapter], given: WeightSpec, expected: Audit.Rule?
  ) throws(CheckpointError) {
    self.record = record
    guard let record else {
      (matched, missing, unknown, recordIndex, weightsMatch, methodMatches) = (
        [], [], [], clients.map { _ in nil }, nil, nil
      )
      return
    }
    var index: [Int?]
    if record.digests.count == record.clients.count, !record.digests.isEmpty {
      index = []
      for client in clients { index.append(record.digests.firstIndex(of: try client.weightDigest())) }
    } else if record.clients.count == clients.count {
      index = Array(clients.indices)  // an older record: no digests, matched by position
    } else {
      index = clients.map { client in record.clients.firstIndex(of: normalizedPath(client.path)) }
    }
    // A record entry matches at most one given client (the same file given twice is refused earlier).
    var seen = Set<Int>()
    index = index.map { found in found.flatMap { seen.insert($0).inserted ? $0 : nil } }
    recordIndex = index
    matched = zip(clients, index).compactMap { $1 == nil ? nil : $0.path }
    unknown = zip(clients, index).compactMap { $1 == nil ? $0.path : nil }
    missing = record.clients.indices.filter { !seen.contains($0) }.map { record.clients[$0] }
    if given == .uniform || !unknown.isEmpty || !missing.isEmpty {
      weightsMatch = nil
    } else {
      weightsMatch = Audit.sameWeights(given, index.map { record.weights[$0 ?? 0] }, count: clients.count)
    }
    methodMatches = expected.map { rule in
      AggregationMethod(name: record.method).map(rule.recordedMethods.contains) ?? false
    }
  }

  /// Every disagreement found, in a fixed order.
  public var mismatches: [Mismatch] {
    (unknown.isEmpty && missing.isEmpty ? [] : [.clients]) + (weightsMatch == false ? [.weights] : [])
      + (methodMatches == false ? [.method] : [])
  }

  /// The recorded weights in the order of the given clients, when every given client is in the
  /// record and every recorded one is given.
  public var recordedWeights: [Double]? {
    guard let record, missing.isEmpty, unknown.isEmpty else { return nil }
    return recordIndex.map { record.weights[$0 ?? 0] }
  }
}

extension Audit.Rule {
  /// The methods whose merges this rule describes (fedex's adapter is a FedAvg merge).
  public var recordedMethods: [AggregationMethod] {
    switch self {
    case .fedavg: [.fedavg, .fedex]
    case .floraNA: [.floraNA]
    case .floor: [.svd]
    }
  }
}
