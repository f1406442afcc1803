import Checkpoints
import TestSupport
import Testing

@testable import Adapters

@Suite("Adapters written by PEFT and gguf-py, against expected.json (dense fp64 in NumPy)")
struct FixtureTests {
  static let expected = try? Fixtures.json("adapters/expected.json")

  static func adapter(_ name: String) throws -> Adapter { try Adapter.load(Fixtures.path("adapters/" + name)) }

  @Test(
    "Ranks and scales, including rsLoRA and rank/alpha patterns",
    arguments: ["client_a", "client_r4", "client_rslora", "client_pattern", "client_bf16", "client_embed"])
  func scales(_ name: String) throws {
    let adapter = try Self.adapter(name)
    let modules = try #require(Self.expected?["clients"]?[name]?["modules"]?.objectValue)
    #expect(adapter.modules.count == modules.count)
    for (module, entry) in modules {
      let loaded = try #require(adapter.modules.first { $0.name == module }, "\(module)")
      #expect(loaded.rank == entry["r"]?.intValue)
      #expect(abs(loaded.scale - (entry["scale"]?.doubleValue ?? 0)) < 1e-12, "\(module)")
      #expect(loaded.kind.rawValue == entry["kind"]?.stringValue)
    }
  }

  @Test(
    "A llama.cpp-layout GGUF client (GQA) is refused without head counts, and with them gives its PEFT twin's products",
    arguments: ["client_a", "client_rslora", "client_pattern"])
  func ggufTwin(_ name: String) throws {
    let peft = try Self.adapter(name)
    // Written as llama.cpp's converter writes them: q/k rows permuted per head (4 heads, 2 KV heads).
    let foreign = try Adapter.load(Fixtures.path("adapters/gguf/\(name).gguf"))
    #expect(foreign.pendingRowOrder)
    #expect(throws: AdapterError.unknownRowOrder(path: foreign.path, writing: false)) {
      try ClientSet([peft, foreign])
    }
    let heads = try LlamaGGUF.heads(configAt: Fixtures.path("adapters/base/config.json"))
    #expect(heads == LlamaGGUF.Heads(query: 4, keyValue: 2))
    let gguf = try Adapter.load(Fixtures.path("adapters/gguf/\(name).gguf"), llamaHeads: heads)
    #expect(
      try QKRowOrder.resolve([foreign], heads: heads)[0].modules.map(\.bRowOrder) == gguf.modules.map(\.bRowOrder))
    #expect(Set(peft.modules.map(\.name)) == Set(gguf.modules.map(\.name)))
    let set = try ClientSet([peft, gguf])
    for module in set.moduleNames {
      let f = try ModuleFactors(set, module: module)
      let t0 = (f.bs[0] * f.a[0]).values, t1 = (f.bs[1] * f.a[1]).values
      let scale = t0.map(abs).max() ?? 1
      #expect(zip(t0, t1).allSatisfy { abs($0 - $1) <= 1e-6 * scale }, "\(module)")
    }
  }

  @Test(
    "Per-module errors match the dense reference", arguments: ["abc_uniform", "abc_samples_1_2_3", "mixed_uniform"])
  func errors(_ setName: String) throws {
    let reference = try #require(Self.expected?["sets"]?[setName])
    let names = (reference["clients"]?.arrayValue ?? []).compactMap { $0.stringValue }
    let weights = (reference["weights"]?.arrayValue ?? []).compactMap { $0.doubleValue }
    #expect(!names.isEmpty && names.count == weights.count)
    let set = try ClientSet(try names.map(Self.adapter), weights: .weights(weights))
    for (module, entry) in try #require(reference["modules"]?.objectValue) {
      let f = try ModuleFactors(set, module: module)
      let g = ModuleGeometry(f)
      func close(_ value: Double?, _ key: String) {
        let want = entry[key]?.doubleValue ?? .nan
        #expect(
          abs((value ?? .nan) - want) <= 1e-5 * want + 1e-9, "\(setName) \(module) \(key): \(value ?? .nan) vs \(want)")
      }
      close(g.normT, "norm_T")
      close(g.relative(FedAvg.aggregate(f, geometry: g).residual), "fedavg_rel_error")
      close(g.relative(g.floorResidual(rank: f.maxRank)), "svd_floor_rel_error")
      close(g.relative(FloraNA.aggregate(f, geometry: g).residual), "flora_na_rel_error")
    }
  }

  @Test("modules_to_save: the weighted average of the clients' copies, any range of rows")
  func modulesToSave() throws {
    let embed = try Self.adapter("client_embed")
    let set = try ClientSet([embed, embed], weights: .weights([0.25, 0.75]))
    let name = try #require(set.fullTensorNames.first)
    let average = try AdapterWriter.weightedAverage(name, set: set)
    let copy = try #require(embed.fullTensors.first { $0.name == name })
    let rowBytes = average.rowBytes
    let rows = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * rowBytes, alignment: 8)
    defer { rows.deallocate() }
    try average.rowFill()(5..<9, rows)  // same copy twice: the average is the copy
    #expect(Array(rows) == Array(try copy.copyBytes()[(5 * rowBytes)..<(9 * rowBytes)]))
  }

  @Test("DoRA and other PEFT types are listed but not merged, by name")
  func refusals() throws {
    let dora = try Self.adapter("client_dora")
    #expect(dora.isDoRA)
    #expect(throws: AdapterError.doraNotMergeable(path: dora.path)) {
      try Merge(ClientSet([dora]), options: MergeOptions(method: .fedavg))
    }
  }

  @Test("Mismatched modules name the client and module; --allow-missing turns them into zero updates")
  func mismatch() throws {
    let a = try Self.adapter("client_a")
    let bias = try Self.adapter("client_bias")
    #expect(throws: AdapterError.self) { try ClientSet([a, bias]) }
    let set = try ClientSet([a, bias], allowMissing: true)
    #expect(!set.warnings.isEmpty)
  }
}
