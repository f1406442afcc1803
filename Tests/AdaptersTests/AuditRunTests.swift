import Checkpoints
import TestSupport
import Testing

@testable import Adapters

@Suite("Audit.run: the audit of a merge, its verdict and its gate, by the library alone")
struct AuditRunTests {
  static func clients(_ names: [String]) throws -> [Adapter] {
    try names.map { try Adapter.load(Fixtures.path("adapters/" + $0)) }
  }

  /// Merges `clients` with `method` into a PEFT folder through the library, provenance recorded.
  static func merged(_ clients: [Adapter], method: AggregationMethod, in folder: String) throws -> Adapter {
    let set = try ClientSet(clients)
    let merge = try Merge(set, options: MergeOptions(method: method))
    let path = folder + "/" + method.rawValue
    let writer = try MergeWriter(
      merge, to: MergeDestination(path: path),
      provenance: AdapterWriter.Provenance(method: method.rawValue, set: set, version: "test"))
    let transaction = OutputTransaction()
    _ = try writer.write(in: transaction)
    try transaction.commit()
    return try Adapter.load(path)
  }

  @Test("A merge of two clients audited against three fails with provenance-mismatch; waived, the numbers are judged")
  func partialMerge() throws {
    let folder = Fixtures.scratch("audit-run-partial")
    defer { Fixtures.remove(folder) }
    let all = try Self.clients(["client_a", "client_b", "client_c"])
    let partial = try Self.merged(Array(all.prefix(2)), method: .floraNA, in: folder)
    let report = try Audit.run(clients: all, against: partial, options: AuditOptions(expect: .floraNA))
    #expect(report.failure == .provenanceMismatch(.clients))
    #expect(report.expectationMet == false)
    #expect(report.provenance.missing.isEmpty && report.provenance.unknown == [all[2].path])
    #expect(report.rows.count == report.clients.moduleNames.count && report.errors != nil)
    var warned: [String] = []
    let waived = try Audit.run(
      clients: all, against: partial, options: AuditOptions(expect: .floraNA, waived: [.clients]),
      warn: { warned.append($0) })
    #expect(waived.waived == [.clients] && waived.warnings == warned && !warned.isEmpty)
    let errors = try #require(waived.errors)
    #expect(waived.failure == (errors.meets(.floraNA) ? nil : .worseThanExpected(.floraNA)))
  }

  @Test("An svd merge is optimal at its rank and meets the floor; without an adapter there is no verdict")
  func svdMerge() throws {
    let folder = Fixtures.scratch("audit-run-svd")
    defer { Fixtures.remove(folder) }
    let all = try Self.clients(["client_a", "client_b", "client_c"])
    let svd = try Self.merged(all, method: .svd, in: folder)
    let report = try Audit.run(clients: all, against: svd, options: AuditOptions(expect: .floor))
    #expect(report.verdict == .optimalAtRank && report.failure == nil && report.expectationMet == true)
    #expect(report.weighting.source == "recorded" && report.provenance.mismatches.isEmpty)
    let totals = report.totals
    let (floor, floraNA, fedavg) = try (#require(totals.floor), #require(totals.floraNA), #require(totals.fedavg))
    #expect(floor <= floraNA + 1e-12 && floraNA <= fedavg + 1e-12)
    let plain = try Audit.run(clients: all, against: nil, options: AuditOptions())
    #expect(plain.verdict == nil && plain.totals.against == nil && plain.failure == nil && plain.expectationMet == nil)
    #expect(abs((plain.totals.floor ?? .nan) - floor) <= 1e-12)
  }
}
