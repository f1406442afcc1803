import Checkpoints
import TestSupport
import Testing

@testable import Adapters

@Suite("MergeWriter and the scheduler: a merge planned, solved and written by the library alone")
struct MergeWriterTests {
  static func set() throws -> ClientSet {
    try ClientSet(["client_a", "client_b", "client_c"].map { try Adapter.load(Fixtures.path("adapters/" + $0)) })
  }

  @Test("A merged base through the library's defaults: every base tensor, adapted ones changed, the report returned")
  func mergedBase() throws {
    let set = try Self.set()
    let folder = Fixtures.scratch("merge-writer-base")
    defer { Fixtures.remove(folder) }
    let base = try Checkpoint.open(Fixtures.path("adapters/base"))
    for method in [AggregationMethod.exact, .fedex, .floraNA] {
      let merge = try Merge(set, options: MergeOptions(method: method), withBase: true)
      var destination = MergeDestination(path: folder + "/\(method.rawValue).safetensors")
      destination.base = base
      let writer = try MergeWriter(
        merge, to: destination,
        provenance: AdapterWriter.Provenance(method: method.rawValue, set: set, version: "test"))
      let transaction = OutputTransaction()
      let report = try writer.write(in: transaction)
      try transaction.commit()
      #expect(report.modules.map(\.name) == set.moduleNames)
      let merged = try Checkpoint.open(destination.path)
      #expect(merged.tensors.map(\.name).sorted() == base.tensors.map(\.name).sorted())
      let name = set.moduleNames[0] + ".weight"
      let (before, after) = try (
        #require(base.tensor(named: name)).floats(), #require(merged.tensor(named: name)).floats()
      )
      #expect(before != after, "\(method.rawValue): \(name) unchanged")
      #expect(Checkpoint.exists(destination.fedexAdapterPath) == (method == .fedex))
    }
  }

  @Test("Results come in index order whatever the window; the first failure in order is thrown")
  func scheduler() throws {
    for window in [1, 2, 7, 100] {
      var seen: [Int] = []
      try ModuleScheduler.run(count: 50, window: window, solve: { $0 * $0 }, consume: { seen.append($1) })
      #expect(seen == (0..<50).map { $0 * $0 })
    }
    var consumed: [Int] = []
    #expect(throws: AdapterError.notAdapted(module: "7")) {
      try ModuleScheduler.run(
        count: 50, window: 4,
        solve: { index throws(AdapterError) in
          if index == 7 || index == 9 { throw .notAdapted(module: "\(index)") }
          return index
        }, consume: { _, value in consumed.append(value) })
    }
    #expect(consumed == Array(0..<7))
  }

  @Test("Every registered method declares a distinct name; the option checks come from the declarations")
  func registry() throws {
    let names = MergeMethods.all.map { $0.name }
    #expect(Set(names).count == names.count && names == AggregationMethod.allCases.map(\.rawValue))
    #expect(MergeOptions(method: .exact).problems(withBase: false) == [.needsBase])
    var options = MergeOptions(method: .fedavg)
    options.rank = 0
    options.computeErrors = false
    #expect(options.problems(withBase: false) == [.notAccepted(.rank), .rankNotPositive])
    options.method = .svd
    #expect(options.problems(withBase: false) == [.errorsRequired, .rankNotPositive])
  }
}
