import Checkpoints

extension AdapterWriter {
  /// Provenance recorded in the output's metadata: the method, each client's path (in one
  /// normal form) and the SHA-256 of its weight file (files joined by "+"), the weights used,
  /// the rank asked for, the version.
  public struct Provenance: Sendable, Equatable {
    /// The aggregation method's name.
    public var method: String
    /// Each client's path, in one normal form (`./c0` is `c0`).
    public var clients: [String]
    /// Each client's weight-file SHA-256, in client order; empty in records of earlier versions.
    public var digests: [String]
    /// The weights the merge used, in client order.
    public var weights: [Double]
    /// The fedlora version that wrote it (empty when not recorded).
    public var version: String
    /// The recipe the merge was run from (`merge --recipe`), as written.
    public var recipe: String?
    /// The output rank asked for (`--rank` of svd), when one was.
    public var rank: Int?
    /// A provenance from its fields, without a recipe or rank.
    /// - Parameters:
    ///   - method: the method's name.
    ///   - clients: each client's path, in normal form.
    ///   - digests: each client's weight-file SHA-256, in client order (empty when not hashed).
    ///   - weights: the weights used, in client order.
    ///   - version: the writer's version.
    public init(method: String, clients: [String], digests: [String], weights: [Double], version: String) {
      self.method = method
      self.clients = clients
      self.digests = digests
      self.weights = weights
      self.version = version
    }

    /// The provenance of a merge of `set`: paths in normal form, digests of what was read
    /// (none when `hashing` is false: a dry run records nothing, so it hashes nothing).
    /// - Parameters:
    ///   - method: the method's name.
    ///   - set: the clients and their weights.
    ///   - version: the writer's version (`fedlora.version`).
    ///   - hashing: whether to hash the clients' weight files.
    /// - Throws: ``AdapterError/checkpoint(_:)`` when a weight file cannot be read.
    /// - Complexity: with `hashing`, O(bytes of every client's weight files), clients hashed in
    ///   parallel.
    public init(method: String, set: ClientSet, version: String, hashing: Bool = true) throws(AdapterError) {
      // In parallel: hashing every byte of every client is a tenth of a merge's work.
      let digests =
        hashing
        ? try parallelMap(set.clients) { client throws(AdapterError) in
          try AdapterError.wrap { () throws(CheckpointError) in try client.weightDigest() }
        } : []
      // Adapters held in memory have no file to hash: then no digests are recorded (an audit
      // matches clients by position), rather than empty ones that would all match each other.
      self.init(
        method: method, clients: set.clients.map { normalizedPath($0.path) },
        digests: digests.contains("") ? [] : digests,
        weights: set.weights, version: version)
    }

    /// The `fedlora.*` metadata entries that record it in an output.
    public var metadata: [(key: String, value: String)] {
      [
        ("fedlora.method", method), ("fedlora.version", version),
        ("fedlora.clients", JSON.array(clients.map { .string($0) }).compactText),
        ("fedlora.client_sha256", JSON.array(digests.map { .string($0) }).compactText),
        ("fedlora.weights", JSON.array(weights.map { JSON($0) }).compactText),
      ] + (rank.map { [("fedlora.rank", "\($0)")] } ?? []) + (recipe.map { [("fedlora.recipe", $0)] } ?? [])
    }

    /// What an adapter fedlora wrote recorded of its making; nil for other adapters (or
    /// entries that do not parse). Outputs of earlier versions have no digests.
    /// - Parameter adapter: an adapter, as loaded.
    public init?(recordedIn adapter: Adapter) {
      let entries = Dictionary(adapter.metadataStrings, uniquingKeysWith: { first, _ in first })
      func list(_ key: String) -> [JSON]? {
        entries[key].flatMap { try? JSON.parse(Array($0.utf8), path: key) }?.arrayValue
      }
      guard let method = entries["fedlora.method"], let clients = list("fedlora.clients")?.compactMap(\.stringValue),
        let weights = list("fedlora.weights")?.compactMap(\.doubleValue), weights.count == clients.count
      else { return nil }
      let digests = list("fedlora.client_sha256")?.compactMap(\.stringValue) ?? []
      self.init(
        method: method, clients: clients, digests: digests, weights: weights, version: entries["fedlora.version"] ?? "")
      rank = entries["fedlora.rank"].flatMap { Int($0) }
    }
  }
}
