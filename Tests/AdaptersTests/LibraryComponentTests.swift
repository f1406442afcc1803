import Checkpoints
import TestSupport
import Testing

@testable import Adapters

/// The dense update `T = sum w_u s_u B_u A_u` of `module`, row-major `[d, k]`, from the files.
private func denseUpdate(_ set: ClientSet, module: String) throws -> (d: Int, k: Int, values: [Double]) {
  let found = set.modules(named: module)
  let shapes = found.compactMap { $0?.updateShape }
  let shape = try #require(shapes.first)
  let (d, k) = (shape[0], shape[1])
  var t = [Double](repeating: 0, count: d * k)
  for (entry, weight) in zip(found, set.weights) {
    guard let entry else { continue }
    let (a, b) = try (entry.a.floats(), entry.bFloats())
    for i in 0..<d {
      for j in 0..<k {
        var sum = 0.0
        for l in 0..<entry.rank { sum += Double(b[i * entry.rank + l]) * Double(a[l * k + j]) }
        t[i * k + j] += weight * entry.scale * sum
      }
    }
  }
  return (d, k, t)
}

private func norm(_ values: [Double]) -> Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }

@Suite("BaseMerge, AdapterConversion and ModuleComparison against dense computations, by the library alone")
struct LibraryComponentTests {
  static func set() throws -> ClientSet {
    try ClientSet(["client_a", "client_b", "client_c"].map { try Adapter.load(Fixtures.path("adapters/" + $0)) })
  }

  @Test("BaseMerge of an exact merge writes W0 + T on a module, T computed densely")
  func baseMergeIsDense() throws {
    let set = try Self.set()
    let folder = Fixtures.scratch("library-base-merge")
    defer { Fixtures.remove(folder) }
    let base = try Checkpoint.open(Fixtures.path("adapters/base"))
    let merge = try Merge(set, options: MergeOptions(method: .exact), withBase: true)
    let plan = try BaseMerge.plan(base: base, merge: merge, dtype: nil)
    #expect(plan.tensors.map(\.name).sorted() == base.tensors.map(\.name).sorted())
    var destination = MergeDestination(path: folder + "/merged.safetensors")
    destination.base = base
    let writer = try MergeWriter(
      merge, to: destination, provenance: AdapterWriter.Provenance(method: "exact", set: set, version: "test"))
    let transaction = OutputTransaction()
    _ = try writer.write(in: transaction)
    try transaction.commit()
    let module = set.moduleNames[0]
    let (d, k, t) = try denseUpdate(set, module: module)
    let w0 = try #require(base.tensor(named: module + ".weight")).floats()
    let merged = try #require(Checkpoint.open(destination.path).tensor(named: module + ".weight")).floats()
    #expect(w0.count == d * k && merged.count == d * k)
    let expected = zip(w0, t).map { Double($0) + $1 }
    let difference = zip(merged, expected).map { Double($0) - $1 }
    // fp32 accumulation and storage: within a few ulps of the largest entry.
    #expect(norm(difference) <= 1e-5 * max(1, norm(expected)), "\(norm(difference))")
    #expect(norm(t) > 0)
  }

  @Test("AdapterConversion PEFT -> GGUF -> PEFT keeps every module's scaled update")
  func conversionRoundTrip() throws {
    let folder = Fixtures.scratch("library-conversion")
    defer { Fixtures.remove(folder) }
    let original = try Adapter.load(Fixtures.path("adapters/client_a"))
    let gguf = try AdapterConversion.toGGUF(original, dtype: nil)
    var transaction = OutputTransaction()
    try GGUFWriter.write(gguf.tensors, metadata: gguf.ggufMetadata, to: folder + "/a.gguf", in: transaction)
    try transaction.commit()
    let middle = try Adapter.load(folder + "/a.gguf")
    let peft = AdapterConversion.toPEFT(middle, dtype: nil)
    transaction = OutputTransaction()
    try AdapterWriter.writePEFT(
      peft.tensors, metadata: [("format", "pt")], config: Array((peft.peftConfig ?? .object([])).prettyText.utf8),
      to: folder + "/back", in: transaction)
    try transaction.commit()
    let back = try Adapter.load(folder + "/back")
    #expect(back.modules.map(\.name) == original.modules.map(\.name))
    for (before, after) in zip(original.modules, back.modules) {
      let (x, y) = try (
        denseUpdate(ClientSet([Adapter(name: "x", modules: [before])]), module: before.name),
        denseUpdate(ClientSet([Adapter(name: "y", modules: [after])]), module: after.name)
      )
      let difference = zip(x.values, y.values).map { $0 - $1 }
      #expect(norm(difference) <= 1e-6 * max(1, norm(x.values)), "\(before.name)")
    }
  }

  @Test("ModuleComparison: floor <= flora_na <= fedavg, and FedAvg's residual matches a dense computation")
  func comparisonIsDense() throws {
    let set = try Self.set()
    for module in set.moduleNames {
      let row = try ModuleComparison(set, module: module, rank: nil, merged: nil)
      #expect(
        row.floor <= row.floraNA * (1 + 1e-9) + 1e-12 && row.floraNA <= row.fedavg * (1 + 1e-9) + 1e-12, "\(module)")
    }
    let module = set.moduleNames[0]
    let row = try ModuleComparison(set, module: module, rank: nil, merged: nil)
    let (d, k, t) = try denseUpdate(set, module: module)
    #expect(abs(row.normT - norm(t)) <= 1e-9 * norm(t))
    // FedAvg: (sum w_u Bs_u)(sum w_u A_u), zero-padded to the largest rank.
    let found = set.modules(named: module).compactMap { $0 }
    let r = found.map(\.rank).max() ?? 0
    var a = [Double](repeating: 0, count: r * k)
    var b = [Double](repeating: 0, count: d * r)
    for (entry, weight) in zip(found, set.weights) {
      let (fa, fb) = try (entry.a.floats(), entry.bFloats())
      for l in 0..<entry.rank {
        for j in 0..<k { a[l * k + j] += weight * Double(fa[l * k + j]) }
        for i in 0..<d { b[i * r + l] += weight * entry.scale * Double(fb[i * entry.rank + l]) }
      }
    }
    var residual = t
    for i in 0..<d {
      for j in 0..<k {
        var sum = 0.0
        for l in 0..<r { sum += b[i * r + l] * a[l * k + j] }
        residual[i * k + j] -= sum
      }
    }
    #expect(abs(row.fedavg - norm(residual)) <= 1e-7 * norm(t), "\(row.fedavg) vs \(norm(residual))")
  }
}
