import Adapters
import Checkpoints
import TestSupport
import Testing

// The README's "Use as a library" example is LibraryExample.swift, whole: compiled with plain
// imports (the public API only), run here, and checked to be the text the README shows.

@Suite("Use as a library: the README's example")
struct LibraryExampleTests {
  @Test("It aggregates adapters held in memory: FLoRA-NA between the floor and FedAvg")
  func runs() throws {
    let report = try aggregateInMemory()
    let fedavg = try Merge(
      ClientSet(
        [client("alice", a: [1, 0], b: [1, 2, 3]), client("bob", a: [0, 1], b: [3, 2, 1])],
        weights: .samples([300, 100])),
      options: MergeOptions(method: .fedavg)
    ).aggregate().report
    let (error, floor, fedavgError) = try (
      #require(report.modelError), #require(report.modelFloor), #require(fedavg.modelError)
    )
    #expect(floor > 0.1 && floor <= error + 1e-12 && error < fedavgError - 1e-3, "\(floor) \(error) \(fedavgError)")
  }

  @Test("It merges clients into a merged base checkpoint and audits a merge, through the public API only")
  func mergesAndAudits() throws {
    let folder = Fixtures.scratch("library-example")
    defer { Fixtures.remove(folder) }
    let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }
    let report = try mergeIntoBase(
      clients: clients, base: Fixtures.path("adapters/base"), output: folder + "/merged.safetensors")
    let merged = try Checkpoint.open(folder + "/merged.safetensors")
    #expect(!report.modules.isEmpty && report.modules.count == report.modules.map(\.name).count)
    #expect(merged.tensors.count == (try Checkpoint.open(Fixtures.path("adapters/base"))).tensors.count)
    // An audit of an adapter that is not their merge (one client's own): it names why it fails.
    let audited = try audit(clients[0], clients: clients)
    #expect(audited.verdict != nil && audited.failure != nil && audited.expectationMet == false)
  }

  @Test("A program using the library sees linearAlgebraUnavailable when BLAS cannot be loaded, and goes on")
  func noExitWithoutBLAS() throws {
    let program = String(CLI.executable.dropLast("fedlora".count)) + "fedlora-library-example"
    let broken = try CLI.run([], environment: ["FEDLORA_OPENBLAS": "/nonexistent"], program: program)
    #expect(broken.status == 0 && broken.stdout == "caught: blas-unavailable\nstill running\n", "\(broken)")
    let working = try CLI.run([], program: program)
    #expect(
      working.status == 0 && working.stdout.hasPrefix("merged: error ") && working.stdout.hasSuffix("still running\n"))
  }

  @Test("Adapters built in memory are refused by name when they are not LoRA pairs")
  func refusals() throws {
    #expect(throws: CheckpointError.badEntry(path: "t", tensor: "t", message: "5 values do not fill shape [2, 3]")) {
      try Tensor(name: "t", shape: [2, 3], values: [1, 2, 3, 4, 5])
    }
    let a = try Tensor(name: "a", shape: [2, 3], values: [Float](repeating: 1, count: 6))
    let b = try Tensor(name: "b", shape: [4, 1], values: [1, 2, 3, 4])
    #expect(throws: AdapterError.badFactorShape(path: "m", module: "m", a: [2, 3], b: [4, 1])) {
      try LoRAModule(name: "m", a: a, b: b, alpha: 2)
    }
    let b2 = try Tensor(name: "b", shape: [4, 2], values: [Float](repeating: 1, count: 8))
    #expect(throws: AdapterError.badConfig(path: "m", message: "alpha nan is not a finite number >= 0")) {
      try LoRAModule(name: "m", a: a, b: b2, alpha: .nan)
    }
    let module = try LoRAModule(name: "m", a: a, b: b2, alpha: 2, useRSLoRA: true)
    #expect(module.rank == 2 && module.scale == 2 / 2.0.squareRoot())
    #expect(throws: AdapterError.moduleMismatch(client: "c", module: "m", message: "given twice")) {
      try Adapter(name: "c", modules: [module, module])
    }
  }

  @Test("The README shows the compiled example, word for word")
  func readmeShowsIt() throws {
    func block(_ text: String, from start: String, to end: String) -> String? {
      guard let open = text.range(of: start), let close = text.range(of: end, range: open.upperBound..<text.endIndex)
      else { return nil }
      return String(text[open.upperBound..<close.lowerBound]).trimmingCharacters(in: "\n")
    }
    let compiled = String(
      decoding: try Fixtures.read(Fixtures.root + "/Tests/AdaptersTests/LibraryExample.swift"), as: UTF8.self
    ).trimmingCharacters(in: "\n")
    let readme = String(decoding: try Fixtures.read(Fixtures.root + "/README.md"), as: UTF8.self)
    let shown = try #require(
      block(readme, from: "## Use as a library", to: "\n```\n").flatMap { section in
        section.range(of: "```swift\n").map { String(section[$0.upperBound...]) }
      })
    #expect(shown == compiled)
  }
}

extension String {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
  }
}
