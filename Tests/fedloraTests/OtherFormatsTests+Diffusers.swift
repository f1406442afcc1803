import Checkpoints
import TestSupport
import Testing

/// diffusers' names before PEFT (attention processors, LoRACompatible layers) and a
/// transformer pipeline's file (`transformer.` prefix), written and read back by diffusers
/// (fixtures/generate_formats.py `diffusers_old`, `transformer`).
extension OtherFormatsTests {
  static let old = expected?["diffusers_old"]

  @Test(
    "diffusers' older names (processor to_q_lora, .lora.down, lora_linear_layer): our reading equals diffusers' loader's"
  )
  func diffusersOldNames() throws {
    for (file, section) in [
      ("diffusers_old/processor.safetensors", "processor"), ("diffusers_old/lora_layers.safetensors", "lora_layers"),
    ] {
      let json = try Self.inspect(file)
      #expect(json["format"]?.stringValue == "diffusers", "\(file)")
      try Self.compare(json, Self.old?[section], file: file)
      // No alphas in these files: scale 1, as diffusers loads them.
      for layer in json["layers"]?.arrayValue ?? [] { #expect(layer["scale"]?.doubleValue == 1, "\(file): \(layer)") }
    }
    // The stored names are the old ones (the fixture is what it says).
    let processor = try Checkpoint.open(Self.path("diffusers_old/processor.safetensors")).tensors.map(\.name)
    #expect(
      processor.contains("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q_lora.down.weight"))
    #expect(processor.contains("text_encoder.encoder.layers.0.self_attn.to_out_lora.up.weight"))
    let layers = try Checkpoint.open(Self.path("diffusers_old/lora_layers.safetensors")).tensors.map(\.name)
    #expect(layers.contains("unet.down_blocks.0.resnets.0.conv1.lora.down.weight"))
    #expect(layers.contains("text_encoder.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight"))
    // Written back as diffusers (PEFT-style names): the same updates, bit for bit.
    let folder = Fixtures.scratch("diffusers-old")
    for (index, file) in ["diffusers_old/processor.safetensors", "diffusers_old/lora_layers.safetensors"].enumerated() {
      let out = folder + "/d\(index)"
      let converted = try CLI.run(["convert", Self.path(file), out, "--format", "diffusers"])
      #expect(converted.status == 0, "\(converted.stderr)")
      let audit = try CLI.run(["inspect", Self.path(file), "--against", out, "--json"])
      let rows = try JSON.parse(audit.stdout, path: "audit")["layers"]?.arrayValue ?? []
      #expect(audit.status == 0 && !rows.isEmpty, "\(audit.stderr)")
      for row in rows { #expect((row["against"]?.doubleValue ?? 1) <= 1e-12, "\(row)") }
    }
  }

  @Test("diffusers with a transformer. prefix (a tiny SD3 transformer): names, alpha_pattern scales, updates")
  func diffusersTransformer() throws {
    let json = try Self.inspect("sd3_transformer")
    #expect(json["format"]?.stringValue == "diffusers")
    try Self.compare(json, Self.expected?["sd3_transformer"]?["modules"], file: "sd3_transformer")
    let rows = Self.layers(json)
    #expect(rows["transformer.proj_out"]?["scale"]?.doubleValue == 4)
    #expect(rows["transformer.transformer_blocks.0.attn.add_q_proj"]?["scale"]?.doubleValue == 2)
    // Two clients of the transformer merge, and the output is diffusers' again.
    let folder = Fixtures.scratch("sd3-merge")
    let copy = folder + "/b.safetensors"
    Fixtures.write(try Fixtures.read(Self.path("sd3_transformer/pytorch_lora_weights.safetensors")), to: copy)
    let merged = try CLI.run([
      "merge", Self.path("sd3_transformer"), copy, "-o", folder + "/out", "--method", "stack", "--json",
    ])
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(try JSON.parse(merged.stdout, path: "merge")["format"]?.stringValue == "diffusers")
  }
}
