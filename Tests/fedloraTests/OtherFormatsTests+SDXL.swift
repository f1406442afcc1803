import Checkpoints
import TestSupport
import Testing

/// sd-scripts' SDXL kohya names (sgm blocks: `input_blocks_4_1_...`, `output_blocks_2_2_conv`,
/// `in_layers_2`...) read as diffusers reads them (fixtures/generate_formats.py `sdxl`: a tiny
/// UNet laid out as SDXL's, the kohya file checked there against diffusers' own loader).
extension OtherFormatsTests {
  static let sdxl = expected?["sdxl"]
  static let unetConfig = path("sdxl/unet/config.json")

  static func layers(_ json: JSON) -> [String: JSON] {
    Dictionary(
      uniqueKeysWithValues: (json["layers"]?.arrayValue ?? []).map { ($0["module"]?.stringValue ?? "", $0) })
  }

  @Test("SDXL sgm names: our reading equals diffusers' (module names, shapes, scales, updates)")
  func sdxlReading() throws {
    let json = try Self.inspect("sdxl/kohya_sgm.safetensors")
    #expect(json["format"]?.stringValue == "kohya")
    try Self.compare(json, Self.sdxl?["kohya_sgm"], file: "kohya_sgm")
    let ours = Self.layers(json)
    let want = try #require(Self.sdxl?["kohya_sgm"]?.objectValue)
    #expect(want.count == 66)
    for (name, theirs) in want {
      let row = try #require(ours[name], "\(name)")
      #expect(
        [row["d"]?.intValue ?? 0, row["k"]?.intValue ?? 0] == theirs["shape"]?.arrayValue?.compactMap(\.intValue),
        "\(name)")
      #expect(row["scale"]?.doubleValue == theirs["scale"]?.doubleValue, "\(name)")
    }
    // The sgm names the script wrote, and the module each is (the odd alpha: conv_in's input_blocks_0_0).
    let names = try #require(Self.sdxl?["sgm_names"]?.objectValue)
    for stem in [
      "lora_unet_input_blocks_3_0_op", "lora_unet_output_blocks_2_2_conv", "lora_unet_input_blocks_4_0_skip_connection",
      "lora_unet_middle_block_1_transformer_blocks_0_attn1_to_q", "lora_unet_output_blocks_2_0_emb_layers_1",
      "lora_unet_input_blocks_1_0_in_layers_2", "lora_unet_out_2",
    ] {
      #expect(names.contains { $0.key == stem }, "\(stem)")
    }
    #expect(ours["unet.conv_in"]?["scale"]?.doubleValue == 0.5)
    // The diffusers client of the same UNet: the same module names.
    try Self.compare(Self.inspect("sdxl/diffusers"), Self.sdxl?["diffusers"], file: "sdxl diffusers")
  }

  @Test("SDXL sgm names need layers_per_block: from ss_base_model_version, else --base-config, else refused by name")
  func sdxlConfig() throws {
    let single = Self.path("bad/kohya_sgm_no_config.safetensors")
    let refused = try CLI.run(["inspect", single])
    #expect(
      refused.status == 1 && refused.stderr.contains("give --base-config")
        && refused.stderr.contains("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight"),
      "\(refused.stderr)")
    let given = try Self.inspect("bad/kohya_sgm_no_config.safetensors", ["--base-config", Self.unetConfig])
    #expect(
      Self.layers(given).keys.sorted() == ["unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"])
    // The UNet's config and the file's SDXL agree: the same reading; they disagree: refused.
    try Self.compare(
      Self.inspect("sdxl/kohya_sgm.safetensors", ["--base-config", Self.unetConfig]), Self.sdxl?["kohya_sgm"],
      file: "kohya_sgm with --base-config")
    let folder = Fixtures.scratch("sdxl-config")
    for (index, (config, named)) in [
      ("{\"layers_per_block\": 1}", "layers_per_block is 1"),
      ("{\"layers_per_block\": [2, 2]}", "'layers_per_block' is [2,2]"),
      ("{\"layers_per_block\": 0}", "'layers_per_block' is 0"),
    ].enumerated() {
      let file = folder + "/config\(index).json"
      Fixtures.write(Array(config.utf8), to: file)
      let result = try CLI.run(
        ["inspect", Self.path("sdxl/kohya_sgm.safetensors"), "--base-config", file, "--json"])
      let error = try JSON.parse(result.stdout, path: "stdout")["error"]
      #expect(result.status == 1 && error?["code"]?.stringValue == "bad-config", "\(result.stdout)")
      #expect(error?["message"]?.stringValue?.contains(named) == true, "\(result.stdout)")
    }
    // A --base-config that no input uses is still a usage error.
    let unused = try CLI.run([
      "merge", Fixtures.path("adapters/client_a"), Fixtures.path("adapters/client_b"), "-o", folder + "/out",
      "--base-config", Self.unetConfig,
    ])
    #expect(unused.status == 64 && unused.stderr.contains("--base-config gives"), "\(unused.stderr)")
  }

  @Test(
    "SDXL: a kohya (sgm) and a diffusers client of one UNet merge; kohya output names as diffusers and ComfyUI load")
  func sdxlMerge() throws {
    let folder = Fixtures.scratch("sdxl-merge")
    let clients = [Self.path("sdxl/kohya_sgm.safetensors"), Self.path("sdxl/diffusers")]
    let merged = try CLI.run(["merge"] + clients + ["--method", "stack", "-o", folder + "/mixed", "--json"])
    let report = try JSON.parse(merged.stdout, path: "stdout")
    #expect(merged.status == 0 && report["format"]?.stringValue == "diffusers", "\(merged.stderr)")
    // The stack is the exact mean of the two updates diffusers loads.
    let want = try #require(Self.sdxl?["fedavg_kohya_diffusers"]?.objectValue)
    let inspected = try CLI.run(["inspect", folder + "/mixed", "--json"])
    let ours = Self.layers(try JSON.parse(inspected.stdout, path: "stdout"))
    #expect(ours.count == want.count)
    for (name, value) in want {
      let expected = value.doubleValue ?? .nan
      #expect(abs((ours[name]?["norm_sBA"]?.doubleValue ?? 0) - expected) <= 1e-5 * expected, "\(name)")
    }
    // --format kohya from clients of two namings: diffusers' block names for every UNet module.
    let kohya = try CLI.run(["merge"] + clients + ["--format", "kohya", "-o", folder + "/k.safetensors", "--quiet"])
    #expect(kohya.status == 0, "\(kohya.stderr)")
    let written = try Checkpoint.open(folder + "/k.safetensors").tensors.map(\.name)
    #expect(written.count == 3 * 66)
    #expect(written.contains("lora_unet_down_blocks_0_downsamplers_0_conv.lora_down.weight"))
    #expect(written.contains("lora_unet_up_blocks_0_upsamplers_0_conv.lora_up.weight"))
    #expect(written.contains("lora_unet_conv_in.alpha"))
    #expect(!written.contains { name in KohyaSGM.patterns.contains { name.contains($0) } })
    // From the sgm client alone: its own sgm names, and its SDXL note, so it reads back as it was.
    let converted = try CLI.run([
      "convert", Self.path("sdxl/kohya_sgm.safetensors"), folder + "/c.safetensors", "--format", "kohya",
    ])
    #expect(converted.status == 0, "\(converted.stderr)")
    let file = try Checkpoint.open(folder + "/c.safetensors")
    #expect(Set(file.tensors.map(\.name)) == Set(try Checkpoint.open(clients[0]).tensors.map(\.name)))
    #expect(file.metadata.contains { $0.key == "ss_base_model_version" && $0.value == "sdxl_base_v1-0" })
    for (output, against) in [(folder + "/c.safetensors", clients[0]), (folder + "/k.safetensors", nil)] {
      let audit = try CLI.run(
        ["inspect", against ?? output] + (against == nil ? [] : ["--against", output]) + ["--json"])
      #expect(audit.status == 0, "\(audit.stderr)")
      if against != nil {
        for layer in try JSON.parse(audit.stdout, path: "audit")["layers"]?.arrayValue ?? [] {
          #expect((layer["against"]?.doubleValue ?? 1) <= 1e-12, "\(layer)")
        }
      }
    }
  }
}

/// The block patterns diffusers tells sgm names by.
enum KohyaSGM {
  static let patterns = ["input_blocks", "middle_block", "output_blocks"]
}
