import Checkpoints
import TestSupport
import Testing

/// Merged and converted adapters written in the clients' own formats (kohya-ss, diffusers,
/// MLX-LM) and read back: every module's update as the merge reported it, refusals by name.
@Suite("CLI: writing kohya, diffusers and MLX-LM adapters")
struct FormatWritersTests {
  static func path(_ name: String) -> String { Fixtures.path("formats/" + name) }
  static let kohya = ["kohya_b.safetensors", "kohya_c.safetensors"].map(path)
  static let mlx = ["mlx", "mlx_b"].map(path)
  static let conv = "unet.down_blocks.0.resnets.0.conv1"

  static func json(_ arguments: [String]) throws -> (CLI.Result, JSON) {
    let result = try CLI.run(arguments + ["--json"])
    return (result, try JSON.parse(result.stdout, path: "stdout"))
  }

  /// Merges `clients` to `output`, then audits the output against them: the format read back,
  /// and each layer's error of the written adapter equal to the merge's report.
  static func mergeAndAudit(
    _ clients: [String], _ output: String, _ extra: [String], format: String, readBack: String, source: String
  ) throws {
    let (merged, report) = try json(["merge"] + clients + ["-o", output] + extra)
    #expect(merged.status == 0, "\(merged.stdout) \(merged.stderr)")
    #expect(report["format"]?.stringValue == format && report["format_source"]?.stringValue == source, "\(output)")
    let (_, inspected) = try json(["inspect", output])
    #expect(inspected["format"]?.stringValue == readBack, "\(output): read back as \(inspected["format"] ?? .null)")
    let (audited, audit) = try json(["inspect"] + clients + ["--against", output])
    #expect(audited.status == 0, "\(audited.stderr)")
    let reported = Dictionary(
      uniqueKeysWithValues: (report["layers"]?.arrayValue ?? []).map {
        ($0["name"]?.stringValue ?? "", $0["relative_error"]?.doubleValue ?? .nan)
      })
    let layers = audit["layers"]?.arrayValue ?? []
    #expect(layers.count == reported.count && !layers.isEmpty, "\(output)")
    for layer in layers {
      let name = layer["module"]?.stringValue ?? ""
      let theirs = reported[name] ?? .nan
      let ours = layer["against"]?.doubleValue ?? .nan
      // float32 factors: the written update is the solved one to within its rounding.
      #expect(abs(ours - theirs) <= 1e-6 + 1e-4 * theirs, "\(output) \(name): audited \(ours), reported \(theirs)")
    }
  }

  @Test("merge writes the clients' format by default; read back, every update is what the merge reported")
  func defaults() throws {
    let folder = Fixtures.scratch("writers-default")
    try Self.mergeAndAudit(
      Self.kohya, folder + "/k.safetensors", ["--method", "fedavg"], format: "kohya", readBack: "kohya",
      source: "clients")
    // kohya's own layout: a 3x3 conv LoRA 4-D again, alphas, the ss_* notes both clients share.
    let file = try Checkpoint.open(folder + "/k.safetensors")
    let stem = "lora_unet_down_blocks_0_resnets_0_conv1"
    #expect(file.tensors.first { $0.name == stem + ".lora_down.weight" }?.shape == [4, 8, 3, 3])
    #expect(file.tensors.first { $0.name == stem + ".lora_up.weight" }?.shape == [8, 4, 1, 1])
    #expect(file.tensors.first { $0.name == stem + ".alpha" }?.shape == [])
    #expect(file.metadata.contains { $0.key == "ss_network_module" && $0.value == "networks.lora" })
    #expect(file.metadata.contains { $0.key == "fedlora.scale_folded" && $0.value == "true" })
    #expect(file.metadata.contains { $0.key == "fedlora.method" })

    try Self.mergeAndAudit(
      [Self.path("diffusers_a"), Self.kohya[0]], folder + "/mixed", ["--method", "flora-na"], format: "diffusers",
      readBack: "diffusers", source: "clients")
    let diffusers = try Checkpoint.open(folder + "/mixed/pytorch_lora_weights.safetensors")
    #expect(diffusers.tensors.first { $0.name == Self.conv + ".lora_A.weight" }?.shape == [4, 8, 3, 3])
    #expect(diffusers.metadata.contains { $0.key == "lora_adapter_metadata" })

    try Self.mergeAndAudit(
      Self.mlx, folder + "/mlx", ["--method", "svd", "--rank", "3"], format: "mlx", readBack: "mlx",
      source: "clients")
    let config = try JSON.parse(Fixtures.read(folder + "/mlx/adapter_config.json"), path: "config")
    #expect(config["lora_parameters"]?["rank"]?.intValue == 3 && config["num_layers"]?.intValue == 2)
    let mlxFile = try Checkpoint.open(folder + "/mlx/adapters.safetensors")
    #expect(mlxFile.tensors.first { $0.name == "model.layers.0.self_attn.v_proj.lora_b" }?.shape == [3, 8])
  }

  @Test("--format across formats; a kohya merge into a folder is a PEFT folder, said so")
  func across() throws {
    let folder = Fixtures.scratch("writers-across")
    try Self.mergeAndAudit(
      Self.kohya, folder + "/d.safetensors", ["--method", "stack", "--format", "diffusers"], format: "diffusers",
      readBack: "diffusers", source: "given")
    try Self.mergeAndAudit(
      Self.kohya, folder + "/p", ["--method", "fedavg", "--format", "peft"], format: "peft", readBack: "peft",
      source: "given")
    try Self.mergeAndAudit(
      [Self.path("diffusers_a"), Self.kohya[1]], folder + "/k.safetensors", ["--format", "kohya"], format: "kohya",
      readBack: "kohya", source: "given")
    try Self.mergeAndAudit(
      Self.mlx, folder + "/m.safetensors", ["--method", "fedavg"], format: "safetensors", readBack: "peft",
      source: "extension")
    // PEFT clients keep today's rules.
    let peft = ["client_a", "client_b"].map { Fixtures.path("adapters/" + $0) }
    try Self.mergeAndAudit(peft, folder + "/q", [], format: "peft", readBack: "peft", source: "default")
    let (folderRun, folderReport) = try Self.json(["merge"] + Self.kohya + ["-o", folder + "/kf"])
    #expect(folderRun.status == 0 && folderReport["format"]?.stringValue == "peft")
    #expect(folderReport["warnings"]?.arrayValue?.contains { $0.stringValue?.contains("kohya") == true } == true)
  }

  @Test("A module the format cannot hold is refused by name before anything is written, dry run alike")
  func refusals() throws {
    let folder = Fixtures.scratch("writers-refuse")
    let gguf = ["client_a.gguf", "client_b.gguf"].map { Fixtures.path("adapters/gguf/" + $0) }
    let bias = ["client_bias", "client_bias_b"].map { Fixtures.path("adapters/" + $0) }
    for (arguments, named) in [
      (Self.kohya + ["--format", "mlx", "-o", folder + "/m"], "a conv LoRA with kernel"),
      (Self.mlx + ["--format", "kohya", "-o", folder + "/k.safetensors"], "module 'model.layers.0.self_attn.q_proj'"),
      (
        gguf + [
          "--format", "kohya", "-o", folder + "/g.safetensors", "--base-config",
          Fixtures.path("adapters/base/config.json"),
        ],
        "no kohya-ss name"
      ),
      (bias + ["--format", "kohya", "-o", folder + "/b.safetensors"], "lora_B.bias of"),
      (bias + ["--format", "mlx", "-o", folder + "/b"], "lora_B.bias of"),
    ] {
      let real = try CLI.run(["merge"] + arguments)
      let dry = try CLI.run(["merge"] + arguments + ["--dry-run"])
      #expect(real.status == 1 && real.stderr.contains(named), "\(arguments): \(real.stderr)")
      #expect(dry.status == real.status && dry.stderr == real.stderr, "\(arguments): \(dry.stderr)")
    }
    #expect(Checkpoint.listDirectory(folder).isEmpty)
    // Formats and OUTPUTs that cannot go together: usage errors.
    for arguments in [
      ["--format", "kohya", "-o", folder + "/k"], ["--format", "mlx", "-o", folder + "/m.safetensors"],
      ["--format", "diffusers", "-o", folder + "/d.gguf"],
    ] {
      #expect(try CLI.run(["merge"] + Self.kohya + arguments).status == 64, "\(arguments)")
    }
    let convert = try CLI.run(["convert", Self.kohya[0], folder + "/c", "--format", "mlx"])
    #expect(convert.status == 1 && convert.stderr.contains("a conv LoRA with kernel"), "\(convert.stderr)")
  }

  @Test("convert --format: kohya -> PEFT -> kohya and MLX -> PEFT -> MLX give the same updates")
  func roundTrips() throws {
    let folder = Fixtures.scratch("writers-convert")
    func norms(_ path: String) throws -> [String: Double] {
      let (result, document) = try Self.json(["inspect", path])
      #expect(result.status == 0, "\(path): \(result.stderr)")
      return Dictionary(
        uniqueKeysWithValues: (document["layers"]?.arrayValue ?? []).map {
          ($0["module"]?.stringValue ?? "", $0["norm_sBA"]?.doubleValue ?? .nan)
        })
    }
    for (input, steps, last) in [
      (Self.kohya[0], [("/kp", "peft"), ("/kk.safetensors", "kohya")], "kohya"),
      (Self.kohya[0], [("/kd", "diffusers"), ("/kdk.safetensors", "kohya")], "kohya"),
      (Self.mlx[0], [("/mp", "peft"), ("/mm", "mlx")], "mlx"),
    ] {
      var from = input
      for (output, format) in steps {
        let (converted, document) = try Self.json(["convert", from, folder + output, "--format", format])
        #expect(converted.status == 0 && document["format"]?.stringValue == format, "\(converted.stderr)")
        from = folder + output
      }
      let (before, after) = (try norms(input), try norms(from))
      #expect(before.count == after.count && !before.isEmpty)
      for (name, value) in before {
        #expect(abs((after[name] ?? .nan) - value) <= 1e-6 * value, "\(input) -> \(from): \(name)")
      }
      let (_, inspected) = try Self.json(["inspect", from])
      #expect(inspected["format"]?.stringValue == last)
      // The factors themselves come back bit for bit (audit of the one client: error 0).
      let (_, audit) = try Self.json(["inspect", input, "--against", from])
      for layer in audit["layers"]?.arrayValue ?? [] {
        #expect((layer["against"]?.doubleValue ?? 1) <= 1e-12, "\(from)")
      }
    }
    let kohya = try Checkpoint.open(folder + "/kdk.safetensors")
    #expect(
      kohya.tensors.first { $0.name == "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight" }?.shape == [
        4, 8, 3, 3,
      ])
    #expect(kohya.metadata.contains { $0.key == "fedlora.scale_folded" && $0.value == "false" })
  }
}
