import Adapters
import Checkpoints

// A program built on the libraries alone. Whatever fails (here, with FEDLORA_OPENBLAS naming a
// library that does not exist, loading BLAS) is an error it catches: the library never ends
// its host. It prints the error's code and goes on.
func client(_ name: String, a: [Float], b: [Float]) throws -> Adapter {
  let module = try LoRAModule(
    name: "model.layers.0.self_attn.q_proj",
    a: Tensor(name: "\(name).lora_A", shape: [1, 2], values: a),
    b: Tensor(name: "\(name).lora_B", shape: [3, 1], values: b), alpha: 1)
  return try Adapter(name: name, modules: [module])
}

do {
  let clients = try ClientSet([client("alice", a: [1, 0], b: [1, 2, 3]), client("bob", a: [0, 1], b: [3, 2, 1])])
  let report = try Merge(clients, options: MergeOptions(method: .floraNA)).aggregate().report
  print("merged: error \(report.modelError ?? 0)")
} catch let error as AdapterError {
  print("caught: \(error.code)")
}
print("still running")
