import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// The clients to aggregate, checked against each other, with their normalised weights.
public struct ClientSet: Sendable {
  /// The adapters, in the order given.
  public let clients: [Adapter]
  /// The client weights `w_u`, in client order: summing to 1 unless given with `normalize: false`.
  public let weights: [Double]
  /// Every adapted weight, sorted by name.
  public let moduleNames: [String]
  /// Full tensors (`modules_to_save`) every client carries, by name.
  public let fullTensorNames: [String]
  /// Things the user should know (base models, missing modules, twins).
  public let warnings: [String]
  /// The clients' ranks when they differ (sorted), for the rules that zero-pad them
  /// (``AggregationMethod/zeroPadsRanks``); nil when every module has one rank.
  public let differentRanks: [Int]?
  /// Per client, the index in its `modules` of each module name.
  private let moduleIndex: [[String: Int]]

  /// Checks that `clients` can be clients of one model: each one sound (no module problems),
  /// some module in common, the same shapes, one base model named (unless
  /// `allowDifferentBases`). With `allowMissing`, a module a client lacks counts as a zero
  /// update from it.
  ///
  /// ```swift
  /// let set = try ClientSet(adapters, weights: .samples([300, 100, 200]))
  /// ```
  ///
  /// - Parameters:
  ///   - clients: the loaded adapters, q/k row order resolved (``Checkpoints/QKRowOrder/resolve(_:heads:)``).
  ///   - spec: uniform weights, weights as given, or sample counts.
  ///   - normalize: scale the weights to sum to 1 (uniform weights always are); false keeps them as
  ///     given.
  ///   - allowMissing: count a module a client lacks as a zero update from it (with a warning) instead
  ///     of refusing.
  ///   - allowDifferentBases: accept clients whose configs name different base models (with a warning).
  /// - Throws: ``AdapterError``: `bad-weights` (none, not one per client, negative, not finite, summing
  ///   to zero), a client's first module problem, `unknown-row-order`, `module-mismatch` for a
  ///   malformed `lora_B.bias`, `shape-mismatch`, `no-common-module`, `different-base-models`,
  ///   `module-missing`.
  /// - Complexity: O(clients × modules) on the headers; clients whose weight files have equal sizes are
  ///   compared byte by byte up to their first difference (to warn of one client given twice).
  public init(
    _ clients: [Adapter], weights spec: WeightSpec = .uniform, normalize: Bool = true, allowMissing: Bool = false,
    allowDifferentBases: Bool = false
  ) throws(AdapterError) {
    guard !clients.isEmpty else { throw .badWeights(message: "no clients") }
    if let problem = clients.lazy.flatMap(\.problems).first { throw problem }
    if let pending = clients.first(where: \.pendingRowOrder) {
      throw pending.unknownRowOrder
    }
    weights = try Self.normalizedWeights(spec, clients: clients.count, normalize: normalize)
    let names = try Self.moduleShapes(clients).keys.sorted()
    try Self.checkCommonModule(clients)
    var warnings = try Self.baseModelWarnings(clients, allowDifferentBases: allowDifferentBases)
    warnings += try Self.missingModuleWarnings(clients, names: names, allowMissing: allowMissing)
    let ranks = Set(clients.flatMap { $0.modules.map(\.rank) })
    differentRanks = ranks.count > 1 ? ranks.sorted() : nil
    for (i, client) in clients.enumerated() {
      if let twin = clients[..<i].first(where: { Self.sameBytes($0, client) }) {
        warnings.append("\(client.path) holds the same bytes as \(twin.path): one client given twice under two paths?")
      }
    }
    self.clients = clients
    moduleNames = names
    fullTensorNames = try Self.sharedFullTensors(clients)
    self.warnings = warnings
    moduleIndex = clients.map { client in
      Dictionary(client.modules.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
    }
  }

  /// The weights `spec` gives `count` clients: finite, non-negative, not all zero; normalised to
  /// sum to 1 when `normalize` (uniform weights always are).
  private static func normalizedWeights(_ spec: WeightSpec, clients count: Int, normalize: Bool) throws(AdapterError)
    -> [Double]
  {
    var raw: [Double]
    switch spec {
    case .uniform: raw = [Double](repeating: 1, count: count)
    case let .weights(values), let .samples(values): raw = values
    }
    guard raw.count == count else {
      throw .badWeights(message: "\(raw.count) values for \(count) clients")
    }
    guard raw.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
      throw .badWeights(message: "weights must be finite and non-negative")
    }
    let total = raw.reduce(0, +)
    guard total > 0 else { throw .badWeights(message: "weights sum to zero") }
    return normalize || spec == .uniform ? raw.map { $0 / total } : raw
  }

  /// The update shape `[d, k]` of every module some client adapts, checked to agree across
  /// clients, with each `lora_B.bias` checked to be `[d]` floats.
  private static func moduleShapes(_ clients: [Adapter]) throws(AdapterError) -> [String: [Int]] {
    var shapes: [String: [Int]] = [:]
    for client in clients {
      for module in client.modules {
        if let bias = module.bias, bias.shape != [module.updateShape[0]] || !bias.dtype.isPlainFloat {
          throw .moduleMismatch(
            client: client.path, module: module.name,
            message:
              "lora_B.bias has shape \(bias.shape) and dtype \(bias.dtype.rawValue); [\(module.updateShape[0])] floats expected"
          )
        }
        if let known = shapes[module.name], known != module.updateShape {
          throw .shapeMismatch(client: client.path, module: module.name, expected: known, found: module.updateShape)
        }
        shapes[module.name] = shapes[module.name] ?? module.updateShape
      }
    }
    return shapes
  }

  /// Refuses clients (more than one) that adapt no module in common.
  private static func checkCommonModule(_ clients: [Adapter]) throws(AdapterError) {
    let moduleSets = clients.map { Set($0.modules.map(\.name)) }
    if clients.count > 1, moduleSets.dropFirst().reduce(moduleSets[0], { $0.intersection($1) }).isEmpty {
      let listed = zip(clients, moduleSets).map {
        "\($0.path) adapts \($1.sorted().prefix(2).joined(separator: ", "))\($1.count > 2 ? ", ..." : "")"
      }
      throw .noCommonModule(message: "no module is adapted by every client (\(listed.joined(separator: "; ")))")
    }
  }

  /// Refuses clients whose configs name different base models, or, when that is allowed, warns.
  private static func baseModelWarnings(_ clients: [Adapter], allowDifferentBases: Bool) throws(AdapterError)
    -> [String]
  {
    let bases = clients.compactMap { client in client.config?.baseModel.map { (client.path, $0) } }
    guard Set(bases.map(\.1)).count > 1 else { return [] }
    let listed = bases.map { "\($0.0): \($0.1)" }.joined(separator: "; ")
    guard allowDifferentBases else { throw .differentBaseModels(message: listed) }
    return ["clients name different base models (allowed): \(listed)"]
  }

  /// Refuses a client that lacks one of `names`, or, with `allowMissing`, warns once per client.
  private static func missingModuleWarnings(_ clients: [Adapter], names: [String], allowMissing: Bool)
    throws(AdapterError) -> [String]
  {
    var warnings: [String] = []
    for client in clients {
      let own = Set(client.modules.map(\.name))
      let missing = names.filter { !own.contains($0) }
      guard let first = missing.first else { continue }
      guard allowMissing else {
        throw .moduleMissing(client: client.path, module: first)
      }
      warnings.append("\(client.path): \(missing.count) modules absent, counted as zero updates (first: \(first))")
    }
    return warnings
  }

  /// The full tensors (`modules_to_save`) every client carries, sorted, checked to have one
  /// shape: their copies are averaged, so this is checked before anything is written.
  private static func sharedFullTensors(_ clients: [Adapter]) throws(AdapterError) -> [String] {
    let fullNames = clients.map { Set($0.fullTensors.map(\.name)) }
    let shared = fullNames.dropFirst().reduce(fullNames[0]) { $0.intersection($1) }.sorted()
    for name in shared {
      let copyShapes = clients.map { client in client.fullTensors.first { $0.name == name }?.shape ?? [] }
      if let other = copyShapes.firstIndex(where: { $0 != copyShapes[0] }) {
        throw .shapeMismatch(
          client: clients[other].path, module: name, expected: copyShapes[0], found: copyShapes[other])
      }
    }
    return shared
  }

  /// The ideal bias update `sum_u w_u s_u b_u` of `module` (PEFT's `lora_B.bias`, `[d]`; a
  /// client without one adds nothing), nil when no client has one. It is linear in the clients,
  /// so every rule carries it exactly.
  /// - Parameter module: the module's name.
  /// - Returns: `d` values, or nil.
  /// - Throws: ``AdapterError/checkpoint(_:)`` when a bias cannot be read.
  /// - Complexity: O(clients × d).
  public func biasUpdate(_ module: String) throws(AdapterError) -> [Double]? {
    var sum: [Double]?
    for (entry, weight) in zip(modules(named: module), weights) {
      guard let entry, let bias = entry.bias else { continue }
      let values = try AdapterError.wrap { () throws(CheckpointError) in try bias.floats() }
      if sum == nil { sum = [Double](repeating: 0, count: values.count) }
      for (i, value) in values.enumerated() { sum?[i] += weight * entry.scale * Double(value) }
    }
    return sum
  }

  /// The warning a rule that zero-pads smaller ranks owes the user, when the ranks differ.
  public var rankPaddingWarning: String? {
    differentRanks.map { "clients have different ranks \($0): smaller ones are zero-padded for fedavg and flora-na" }
  }

  /// Whether any client carries a `lora_B.bias`.
  public var hasBias: Bool { clients.contains { $0.modules.contains { $0.bias != nil } } }

  /// Whether two adapters' weight files are byte for byte the same (sizes first: a compare
  /// of different clients ends at their first differing byte).
  static func sameBytes(_ one: Adapter, _ other: Adapter) -> Bool {
    let (a, b) = (one.checkpoint.files, other.checkpoint.files)
    guard !a.isEmpty, a.count == b.count, zip(a, b).allSatisfy({ $0.size == $1.size }) else { return false }
    // Only for a warning: a file that cannot be mapped again fails where it is read for real.
    return zip(a, b).allSatisfy { x, y in
      let same = try? x.withBytes(0..<x.size) { p throws(CheckpointError) in
        try y.withBytes(0..<y.size) { q in p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0 }
      }
      return same == true
    }
  }

  /// Each client's module `module`, in client order.
  /// - Parameter module: the module's name.
  /// - Returns: one entry per client, nil where a client lacks it.
  /// - Complexity: O(clients): each client's modules are indexed by name.
  public func modules(named module: String) -> [LoRAModule?] {
    zip(clients, moduleIndex).map { client, index in index[module].map { client.modules[$0] } }
  }
}
