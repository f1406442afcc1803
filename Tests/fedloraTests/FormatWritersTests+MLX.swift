import Checkpoints
import TestSupport
import Testing

/// MLX-LM's `num_layers`: mlx_lm gives LoRA layers to the model's last `num_layers` layers
/// (`model.layers[-max(num_layers, 0):]`, -1 all) and to the `lora_parameters.keys` paths in them,
/// and refuses a file with tensors for any other module. Checked when read; written exactly.
extension FormatWritersTests {
  /// A llama config.json with `layers` layers (head counts as the fixtures' tiny llama).
  static func modelConfig(layers: Int, in folder: String) -> String {
    let path = folder + "/config\(layers).json"
    Fixtures.write(
      Array("{\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"num_hidden_layers\": \(layers)}".utf8),
      to: path)
    return path
  }

  static func error(_ arguments: [String]) throws -> (status: Int32, code: String?, message: String) {
    let result = try CLI.run(arguments + ["--json"])
    let json = try JSON.parse(result.stdout, path: "stdout")
    let error = json["error"] ?? json["problems"]?.arrayValue?.first
    return (result.status, error?["code"]?.stringValue, error?["message"]?.stringValue ?? result.stderr)
  }

  @Test(
    "MLX-LM num_layers read: layers beyond it, outside the model's last num_layers, or past keys are refused by name")
  func mlxNumLayersRead() throws {
    let folder = Fixtures.scratch("mlx-layers-read")
    // The fixtures: layers 0 and 1 with num_layers 2, which fits a 2-layer model only.
    #expect(
      try CLI.run(["inspect", Self.mlx[0], "--base-config", Self.modelConfig(layers: 2, in: folder)]).status == 0)
    for (layers, named) in [
      (4, "tensor 'model.layers.0.self_attn.q_proj.lora_a' is in layer 0: mlx_lm would refuse it; give num_layers 4"),
      (1, "num_hidden_layers is 1, but tensor 'model.layers.1.self_attn.q_proj.lora_a'"),
    ] {
      let refused = try Self.error([
        "inspect", Self.mlx[0], "--base-config", Self.modelConfig(layers: layers, in: folder),
      ])
      #expect(refused.status == 1 && refused.code == "bad-config" && refused.message.contains(named), "\(refused)")
      // A merge reads the same way: refused, nothing written.
      let merge = try CLI.run(
        ["merge"] + Self.mlx + ["-o", folder + "/out", "--base-config", Self.modelConfig(layers: layers, in: folder)])
      #expect(merge.status == 1 && !Checkpoint.exists(folder + "/out"), "\(merge.stderr)")
    }
  }

  /// A PEFT adapter (r 2, alpha 4) of `modules` (`model.layers.N.self_attn.q_proj` [16, 16]).
  static func peft(_ modules: [String], at folder: String) throws -> String {
    let tensors = modules.flatMap { module in
      [
        OutputTensor(
          name: "base_model.model.\(module).lora_A.weight", dtype: .f32, shape: [2, 16],
          values: (0..<32).map { Float($0 % 7) * 0.1 - 0.3 }),
        OutputTensor(
          name: "base_model.model.\(module).lora_B.weight", dtype: .f32, shape: [16, 2],
          values: (0..<32).map { Float($0 % 5) * 0.1 - 0.2 }),
      ]
    }
    try SafeTensorsWriter.write(tensors, to: folder + "/adapter_model.safetensors")
    Fixtures.write(
      Array("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 4, \"target_modules\": [\"q_proj\"]}".utf8),
      to: folder + "/adapter_config.json")
    return folder
  }

  @Test(
    "MLX-LM num_layers written: the model's layer count minus the lowest layer, the MLX clients' own, else -1 (all)")
  func mlxNumLayersWrite() throws {
    let folder = Fixtures.scratch("mlx-layers-write")
    func written(_ arguments: [String], _ output: String) throws -> JSON {
      let result = try CLI.run(arguments)
      #expect(result.status == 0, "\(arguments): \(result.stderr)")
      return try JSON.parse(Fixtures.read(output + "/adapter_config.json"), path: output)
    }
    // Layer 1 only, of a 4-layer model: num_layers 3 with the model's config (layers 1...3),
    // -1 without it; never 2 (the highest index + 1, which would put the LoRA on layers 2 and 3).
    let upper = try Self.peft(["model.layers.1.self_attn.q_proj"], at: Fixtures.scratch("mlx-peft-upper"))
    let config = Self.modelConfig(layers: 4, in: folder)
    let given = try written(
      ["convert", upper, folder + "/given", "--format", "mlx", "--base-config", config], folder + "/given")
    #expect(given["num_layers"]?.intValue == 3)
    #expect(given["lora_parameters"]?["keys"] == .array([.string("self_attn.q_proj")]))
    let all = try written(["convert", upper, folder + "/all", "--format", "mlx"], folder + "/all")
    #expect(all["num_layers"]?.intValue == -1)
    // Read back with the model: the layers fit.
    for output in ["/given", "/all"] {
      #expect(try CLI.run(["inspect", folder + output, "--base-config", config]).status == 0, "\(output)")
    }
    // MLX clients keep theirs (layers 0 and 1, num_layers 2); a merge with a PEFT client
    // cannot know it without the model: -1.
    let mlx = try written(["merge"] + Self.mlx + ["-o", folder + "/mlx", "--method", "stack"], folder + "/mlx")
    #expect(mlx["num_layers"]?.intValue == 2)
    // A module past the model's layers: refused by name, nothing written (dry run alike).
    let small = Self.modelConfig(layers: 1, in: folder)
    let other = try Self.peft(["model.layers.1.self_attn.q_proj"], at: Fixtures.scratch("mlx-peft-other"))
    for extra in [[], ["--dry-run"]] {
      let refused = try CLI.run(
        ["merge", upper, other, "-o", folder + "/past", "--format", "mlx", "--base-config", small] + extra)
      #expect(
        refused.status == 1 && refused.stderr.contains("module 'model.layers.1.self_attn.q_proj' (in layer 1"),
        "\(refused.stderr)")
    }
    #expect(!Checkpoint.exists(folder + "/past"))
  }
}
