import Checkpoints
import Foundation
import TestSupport
import Testing

/// A dry run is the real run minus the solving and the writing: every refusal the real run makes
/// before its first byte, the dry run makes too, word for word, and neither leaves anything.
@Suite("CLI: dry runs that never lie")
struct DryRunTests {
  static let clients = ["client_a", "client_b"].map { Fixtures.path("adapters/" + $0) }

  /// A PEFT adapter whose one module has a name too long for a GGUF tensor (63 bytes at most).
  static func longNamedAdapter(in folder: String) throws -> String {
    let path = folder + "/long"
    let module = "model.vision_tower.encoder.layers.0.self_attn.a_rather_long_projection_name"
    let tensors = [("lora_A", [4, 8]), ("lora_B", [8, 4])].map { kind, shape in
      OutputTensor(
        name: "base_model.model.\(module).\(kind).weight", dtype: .f32, shape: shape,
        source: .compute { buffer in
          for i in 0..<(shape[0] * shape[1]) {
            buffer.storeBytes(of: Float(i % 7) * 0.1, toByteOffset: 4 * i, as: Float.self)
          }
        })
    }
    try SafeTensorsWriter.write(tensors, metadata: [("format", "pt")], to: path + "/adapter_model.safetensors")
    Fixtures.write(
      Array(
        #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["a_rather_long_projection_name"]}"#.utf8),
      to: path + "/adapter_config.json")
    return path
  }

  @Test("Each refusal before the first byte is the same, exit status, code and message, with and without --dry-run")
  func sameRefusals() throws {
    let folder = Fixtures.scratch("dry-refusals")
    defer { Fixtures.remove(folder) }
    let long = try Self.longNamedAdapter(in: folder)
    Fixtures.write(Array("a file".utf8), to: folder + "/file")
    Fixtures.write(Array("a file".utf8), to: folder + "/peft-here")
    try FileManager.default.createDirectory(atPath: folder + "/folder.safetensors", withIntermediateDirectories: true)
    let names = folder + "/names.safetensors"
    try SafeTensorsWriter.write(
      [OutputTensor(name: String(repeating: "n", count: 64), dtype: .f32, shape: [1], source: .compute { _ in })],
      to: names)
    let biased = ["client_bias", "client_bias_b"].map { Fixtures.path("adapters/" + $0) }
    let cases: [(what: String, arguments: [String], code: String)] = [
      ("a GGUF tensor name over 63 bytes", ["merge", long, "-o", folder + "/new/long.gguf"], "tensor-name-too-long"),
      ("a folder that is a file", ["merge"] + Self.clients + ["-o", folder + "/file/x"], "write-failed"),
      (
        "a file output that is a folder", ["merge"] + Self.clients + ["-o", folder + "/folder.safetensors"],
        "write-failed"
      ),
      ("a PEFT folder that is a file", ["merge"] + Self.clients + ["-o", folder + "/peft-here"], "write-failed"),
      ("a LoRA bias into GGUF", ["merge"] + biased + ["-o", folder + "/new/bias.gguf"], "cannot-carry"),
      (
        "convert: a GGUF tensor name over 63 bytes", ["convert", names, folder + "/new/long.gguf"],
        "tensor-name-too-long"
      ),
      ("convert: a module llama.cpp has no name for", ["convert", long, folder + "/new/long.gguf"], "module-mismatch"),
      ("convert: a folder that is a file", ["convert", Self.clients[0], folder + "/file/x.gguf"], "write-failed"),
    ]
    for (what, arguments, code) in cases {
      let real = try CLI.run(arguments + ["--json"])
      let dry = try CLI.run(arguments + ["--json", "--dry-run"])
      let (realError, dryError) = try (
        JSON.parse(real.stdout, path: "real")["error"], JSON.parse(dry.stdout, path: "dry")["error"]
      )
      #expect(real.status == 1 && dry.status == 1, "\(what): \(real.stdout)\n\(dry.stdout)")
      #expect(realError?["code"]?.stringValue == code, "\(what): \(real.stdout)")
      #expect(realError == dryError, "\(what): the dry run refused differently")
      #expect(!Checkpoint.exists(folder + "/new"), "\(what): a created folder was left behind")
    }
    #expect(
      Set(Checkpoint.listDirectory(folder)) == ["long", "file", "peft-here", "folder.safetensors", "names.safetensors"])
  }

  @Test(
    "Missing parent folders of OUT are created as save_pretrained does; a dry run names the plan and creates nothing")
  func parentFolders() throws {
    let folder = Fixtures.scratch("dry-parents")
    defer { Fixtures.remove(folder) }
    let out = folder + "/runs/7/merged"
    let dry = try CLI.run(["merge"] + Self.clients + ["-o", out, "--samples", "1,3", "--dry-run", "--json"])
    let plan = try JSON.parse(dry.stdout, path: "dry")
    #expect(dry.status == 0 && !Checkpoint.exists(folder + "/runs"), "\(dry.stderr)")
    #expect(plan["method"]?.stringValue == "flora-na" && plan["output"]?.stringValue == out)
    #expect(plan["clients"]?.arrayValue?.compactMap(\.stringValue) == Self.clients)
    #expect(Fixtures.values(plan["weights"]) == [0.25, 0.75])
    #expect(
      plan["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } == [
        out + "/adapter_model.safetensors", out + "/adapter_config.json",
      ])
    let real = try CLI.run(["merge"] + Self.clients + ["-o", out, "--samples", "1,3", "--quiet"])
    #expect(real.status == 0 && Checkpoint.listDirectory(out) == ["adapter_config.json", "adapter_model.safetensors"])
  }
}
