import Adapters
import Checkpoints

/// A client's rank-1 adapter of one 3 x 2 weight, held in memory.
func client(_ name: String, a: [Float], b: [Float]) throws -> Adapter {
  let module = try LoRAModule(
    name: "model.layers.0.self_attn.q_proj",
    a: Tensor(name: "\(name).lora_A", shape: [1, 2], values: a),
    b: Tensor(name: "\(name).lora_B", shape: [3, 1], values: b), alpha: 1)
  return try Adapter(name: name, modules: [module])
}

func aggregateInMemory() throws -> MergeReport {
  let clients = try ClientSet(
    [client("alice", a: [1, 0], b: [1, 2, 3]), client("bob", a: [0, 1], b: [3, 2, 1])],
    weights: .samples([300, 100]))
  let (modules, report) = try Merge(clients, options: MergeOptions(method: .floraNA)).aggregate()
  for (name, estimate) in modules {
    // Bh [d, r] and Ah [r, k], scale folded in: the update is Bh Ah.
    print(name, "rank", estimate.rank, "B", estimate.b.values, "A", estimate.a.values)
  }
  print("error", report.modelError ?? 0, "floor", report.modelFloor ?? 0)
  return report
}

/// Merges the client adapters at `paths` into the base checkpoint at `base`, written to `output`
/// as the CLI would write it (the format from the extension; a sharded folder without one).
func mergeIntoBase(clients paths: [String], base: String, output: String) throws -> MergeReport {
  let clients = try ClientSet(paths.map { try Adapter.load($0) })
  let merge = try Merge(clients, options: MergeOptions(method: .exact), withBase: true)
  var destination = MergeDestination(path: output)
  destination.base = try Checkpoint.open(base)
  let provenance = try AdapterWriter.Provenance(method: "exact", set: clients, version: "example")
  let transaction = OutputTransaction()
  let report = try MergeWriter(merge, to: destination, provenance: provenance).write(in: transaction)
  try transaction.commit()
  return report
}

/// Audits the adapter at `merged` against the clients it claims to aggregate: is it the merge it
/// records, and is it no worse than FLoRA-NA?
func audit(_ merged: String, clients paths: [String]) throws -> AuditReport {
  let report = try Audit.run(
    clients: paths.map { try Adapter.load($0) }, against: Adapter.load(merged),
    options: AuditOptions(expect: .floraNA))
  print("verdict", report.verdict?.rawValue ?? "none", "failure", report.failure.map { "\($0)" } ?? "none")
  return report
}
