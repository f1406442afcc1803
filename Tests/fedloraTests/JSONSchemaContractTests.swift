import Checkpoints
import Foundation
import TestSupport
import Testing

/// Every `--json` run of the suite is validated against docs/schemas/ by `CLI.run`; these runs
/// produce the document forms the other tests do not (so each schema's branches are used).
@Suite("CLI: every JSON document form validates against its schema in docs/schemas")
struct JSONSchemaContractTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }
  static let base = Fixtures.path("adapters/base")

  /// Runs `arguments` with --json (CLI.run validates the document) and returns it.
  func document(_ arguments: [String], status: Int32 = 0) throws -> JSON {
    let result = try CLI.run(arguments + ["--json"])
    #expect(result.status == status, "\(arguments): \(result.stderr)")
    return try JSON.parse(result.stdout, path: "stdout")
  }

  @Test("Forms of merge, convert, verify and inspect beyond the other tests' validate")
  func forms() throws {
    let folder = Fixtures.scratch("schema-forms")
    let merged = folder + "/merged"
    // merge: fedex with its adapter output, a base dry run to a sharded folder; a merge to audit.
    let fedex = try document(
      ["merge"] + Self.clients + ["--method", "fedex", "--base", Self.base, "-o", folder + "/fedex.safetensors"])
    #expect(fedex["adapter_output"]?.stringValue == folder + "/fedex.safetensors.adapter")
    _ = try document(
      ["merge"] + Self.clients + [
        "--method", "svd", "--rank", "64", "--base", Self.base, "-o", folder + "/plan", "--dry-run",
      ])
    _ = try document(["merge"] + Self.clients + ["--method", "fedavg", "-o", merged])
    // convert: an adapter to GGUF, a dry run to a PEFT folder.
    _ = try document(["convert", Self.clients[0], folder + "/a.gguf"])
    _ = try document(["convert", Self.clients[0], folder + "/peft", "--dry-run"])
    // verify: --data on a GGUF, a PyTorch file's unsafe globals, a failed CRC-32.
    _ = try document(["verify", Fixtures.path("gguf/all_types.gguf"), "--data"])
    let evil = try document(["verify", Fixtures.path("pytorch/evil_os_system.bin")], status: 1)
    let problem = evil["files"]?.arrayValue?.first?["problems"]?.arrayValue?.first
    #expect(problem?["code"]?.stringValue == "unsafe-global" && problem?["offset"] != nil, "\(evil.compactText)")
    _ = try document(["verify", Fixtures.path("pytorch/bad_crc.bin"), "--data"], status: 1)
    // inspect: header views of GGUF and PyTorch, one adapter without singular values, an audit.
    _ = try document(["inspect", Fixtures.path("gguf/align64.gguf"), "--file"])
    _ = try document(["inspect", Fixtures.path("pytorch/views.bin"), "--tensors"])
    _ = try document(["inspect", Fixtures.path("adapters/client_pattern"), "--top", "0"])
    let audit = try document(["inspect"] + Self.clients + ["--against", merged, "--expect", "fedavg"])
    // JSON keys use underscores: tolerances as model (`flora_na`, never the rule's `flora-na`).
    #expect(audit["tolerances"]?.objectValue?.map(\.key) == ["fedavg", "flora_na", "floor"], "\(audit.compactText)")
    #expect(audit["model"]?.objectValue?.map(\.key) == ["fedavg", "flora_na", "floor", "against"])
    // A layer with a NaN: its norms are null, never a string in a number column.
    let source = try Checkpoint.open(Self.clients[0])
    mkdir(folder + "/nan", 0o755)
    let poisoned = try #require(source.tensors.first { $0.name.hasSuffix("lora_A.weight") })
    try SafeTensorsWriter.write(
      source.tensors.map { tensor in
        tensor.name == poisoned.name
          ? OutputTensor(
            name: tensor.name, dtype: .f32, shape: tensor.shape,
            values: [.nan] + [Float](repeating: 0.5, count: tensor.elementCount - 1))
          : OutputTensor(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, source: .copy(tensor))
      }, to: folder + "/nan/adapter_model.safetensors")
    Fixtures.write(try Fixtures.read(Self.clients[0] + "/adapter_config.json"), to: folder + "/nan/adapter_config.json")
    let layers = try document(["inspect", folder + "/nan"])["layers"]?.arrayValue ?? []
    let row = try #require(layers.first { $0["nan"]?.intValue == 1 })
    #expect(
      row["norm_A"] == .null && row["norm_sBA"] == .null && row["flags"]?.stringValue?.contains("non-finite") == true)
    // The generic failure document (no command).
    #expect(try document([], status: 64)["schema"]?.stringValue == "fedlora/1")
  }
}
