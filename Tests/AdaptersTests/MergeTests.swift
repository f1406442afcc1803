import Checkpoints
import TestSupport
import Testing

@testable import Adapters

@Suite("Merge: one rule per method, each layer solved once, in memory or written")
struct MergeTests {
  static func set() throws -> ClientSet {
    try ClientSet(
      ["client_a", "client_b", "client_c"].map { try Adapter.load(Fixtures.path("adapters/" + $0)) },
      weights: .weights([1, 2, 3]))
  }

  @Test(
    "In memory, every rule gives the factors and report a written merge holds",
    arguments: [AggregationMethod.fedavg, .floraNA, .svd, .stack])
  func inMemory(_ method: AggregationMethod) throws {
    let set = try Self.set()
    let (modules, report) = try Merge(set, options: MergeOptions(method: method)).aggregate()
    #expect(modules.map(\.name) == set.moduleNames)
    #expect(report.modules.map(\.name) == set.moduleNames)

    let folder = Fixtures.scratch("merge-in-memory")
    defer { Fixtures.remove(folder) }
    let written = try Merge(set, options: MergeOptions(method: method))
    let provenance = AdapterWriter.Provenance(
      method: method.rawValue, clients: [], digests: [], weights: set.weights, version: "test")
    let writtenReport = try AdapterWriter.write(
      written, format: .safetensors, to: folder + "/out.safetensors", dtype: .f32, provenance: provenance)
    let file = try Checkpoint.open(folder + "/out.safetensors")
    for ((module, estimate), (one, other)) in zip(modules, zip(report.modules, writtenReport.modules)) {
      #expect(
        one.rank == other.rank && one.relativeError == other.relativeError && one.relativeFloor == other.relativeFloor,
        "\(module)")
      // The file holds the factors rounded once to F32, with B's scale folded as the config says (alpha = r).
      let a = try #require(file.tensor(named: "base_model.model.\(module).lora_A.weight")).floats()
      #expect(a == estimate.a.values.map { Float($0) }, "\(module)")
    }
  }

  @Test("Each rule states the rank it writes, and the merge lays out what its rule states")
  func ranks() throws {
    let set = try Self.set()
    let clientRanks = set.moduleNames.map { set.modules(named: $0).compactMap { $0?.rank } }
    let shapes = set.moduleNames.map { set.modules(named: $0).compactMap { $0?.updateShape }[0] }
    for (rule, method) in [
      (FedAvg() as any MergeMethod, AggregationMethod.fedavg), (Stack(), .stack), (FloraNA(), .floraNA),
    ] {
      let merge = try Merge(set, options: MergeOptions(method: method))
      #expect(
        merge.outputRanks == zip(clientRanks, shapes).map { rule.outputRank(clientRanks: $0, d: $1[0], k: $1[1]) })
    }
    #expect(Stack().outputRank(clientRanks: [4, 8, 12], d: 64, k: 64) == 24)
    #expect(SVDOptimal(rank: 100).outputRank(clientRanks: [4, 8], d: 6, k: 64) == 6)
    #expect(SVDOptimal(rank: nil).outputRank(clientRanks: [4, 8], d: 64, k: 64) == 8)
  }

  @Test("Without errors, fedavg streams its sums from the files and equals the sums of the widened factors bit for bit")
  func streamed() throws {
    let set = try Self.set()
    for module in set.moduleNames {
      let (a, b) = try FedAvg.streamedSum(set, module: module)
      let factors = try ModuleFactors(set, module: module)
      let (a2, b2) = FedAvg.sum(factors, p: factors.weights, q: factors.weights)
      #expect(a == a2 && b == b2, "\(module)")
    }
    var options = MergeOptions(method: .floraNA)
    options.computeErrors = false
    #expect(throws: AdapterError.self) { try Merge(set, options: options) }
  }

  @Test("A solved module that is not finite (a LAPACK failure) is refused by name, never written")
  func numericalFailure() throws {
    let finite = ModuleEstimate(
      a: Matrix(rows: 1, cols: 2, values: [1, 2]), b: Matrix(rows: 2, cols: 1, values: [3, 4]), residual: 0.5)
    try Merge.checkFinite(finite, normT: 1, floor: 0.25, module: "m")
    let failures: [(ModuleEstimate, Double?, Double?)] = [
      (ModuleEstimate(a: finite.a, b: Matrix(rows: 2, cols: 1, values: [.nan, 4]), residual: 0.5), 1, 0.25),
      (ModuleEstimate(a: finite.a, b: finite.b, residual: .nan), 1, 0.25),
      (finite, .infinity, 0.25),
      (finite, 1, .nan),
    ]
    for (estimate, normT, floor) in failures {
      #expect(throws: AdapterError.numericalFailure(module: "m")) {
        try Merge.checkFinite(estimate, normT: normT, floor: floor, module: "m")
      }
    }
  }

  @Test("Methods by name: each raw value and alias, in any case, with or without hyphens; nothing else")
  func methodNames() {
    for method in AggregationMethod.allCases {
      #expect(AggregationMethod(name: method.rawValue) == method)
      #expect(AggregationMethod(name: method.rawValue.uppercased()) == method)
    }
    #expect(AggregationMethod(name: "fedit") == .fedavg)
    #expect(["florana", "flora_na", "FLORA-NA"].allSatisfy { AggregationMethod(name: $0) == .floraNA })
    #expect(["", "flora", "fed-avg-x", "svd2"].allSatisfy { AggregationMethod(name: $0) == nil })
  }
}
