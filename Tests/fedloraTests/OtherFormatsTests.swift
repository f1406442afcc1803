import Checkpoints
import TestSupport
import Testing

/// kohya-ss, diffusers, MLX-LM and torchtune adapters, written by the real tools
/// (fixtures/generate_formats.py), read in every command; numbers against what those tools give.
@Suite("CLI: kohya, diffusers, MLX-LM and torchtune adapters")
struct OtherFormatsTests {
  static let expected = try? Fixtures.json("formats/expected.json")
  static func path(_ name: String) -> String { Fixtures.path("formats/" + name) }

  static func inspect(_ name: String, _ extra: [String] = []) throws -> JSON {
    let result = try CLI.run(["inspect", path(name), "--json"] + extra)
    #expect(result.status == 0, "\(name): \(result.stderr)")
    return try JSON.parse(result.stdout, path: "stdout")
  }

  /// Our norm_sBA per module against the reference's.
  static func compare(_ json: JSON, _ expected: JSON?, skip: Set<String> = [], file: String) throws {
    let want = try #require(expected?.objectValue, "\(file)")
    let layers = try #require(json["layers"]?.arrayValue)
    #expect(Set(layers.compactMap { $0["module"]?.stringValue }) == Set(want.map(\.key)), "\(file): module names")
    for layer in layers {
      let name = try #require(layer["module"]?.stringValue)
      guard !skip.contains(name), let theirs = expected?[name]?["norm_sBA"]?.doubleValue else { continue }
      let ours = layer["norm_sBA"]?.doubleValue ?? .nan
      #expect(abs(ours - theirs) <= 1e-5 * theirs, "\(file) \(name): \(ours) vs \(theirs)")
    }
  }

  @Test("The format is detected and named, in inspect's text and JSON")
  func detection() throws {
    for (name, format) in [
      ("kohya_b.safetensors", "kohya"), ("diffusers_a", "diffusers"), ("diffusers_noalpha.safetensors", "diffusers"),
      ("mlx", "mlx"), ("torchtune/epoch_0/adapter_model.pt", "torchtune"), ("torchtune/epoch_0", "peft"),
    ] {
      #expect(try Self.inspect(name)["format"]?.stringValue == format, "\(name)")
      let text = try CLI.run(["inspect", Self.path(name)])
      #expect(text.stdout.contains(": \(format) LoRA adapter,"), "\(name): \(text.stdout.prefix(200))")
    }
  }

  @Test("kohya: our reading equals diffusers' own conversion and loading (names, alphas, conv LoRA), ss_* shown")
  func kohya() throws {
    let json = try Self.inspect("kohya_b.safetensors")
    // diffusers gives a module without alpha the file's most common alpha; kohya-ss (and fedlora) its rank.
    let missing = "text_encoder.encoder.layers.0.self_attn.k_proj"
    try Self.compare(json, Self.expected?["diffusers"]?["kohya_b"], skip: [missing], file: "kohya_b")
    let row = try #require(json["layers"]?.arrayValue?.first { $0["module"]?.stringValue == missing })
    #expect(row["scale"]?.doubleValue == 1 && row["alpha"]?.doubleValue == 4)
    let theirs = Self.expected?["diffusers"]?["kohya_b"]?[missing]?["norm_sBA"]?.doubleValue ?? 0
    #expect(abs((row["norm_sBA"]?.doubleValue ?? 0) * 2 - theirs) <= 1e-5 * theirs)
    try Self.compare(Self.inspect("kohya_c.safetensors"), Self.expected?["diffusers"]?["kohya_c"], file: "kohya_c")
    // A 3x3 conv LoRA is the matrix [out, in * 3 * 3].
    let conv = try #require(
      json["layers"]?.arrayValue?.first { $0["module"]?.stringValue == "unet.down_blocks.0.resnets.0.conv1" })
    #expect(conv["d"]?.intValue == 8 && conv["k"]?.intValue == 8 * 9)
    #expect(json["metadata"]?["ss_network_module"]?.stringValue == "networks.lora")
    #expect(try CLI.run(["inspect", Self.path("kohya_b.safetensors")]).stdout.contains("metadata: ss_network_dim = 4"))
  }

  @Test("diffusers: alphas from lora_adapter_metadata, else scale 1")
  func diffusers() throws {
    try Self.compare(Self.inspect("diffusers_a"), Self.expected?["diffusers"]?["diffusers_a"], file: "diffusers_a")
    try Self.compare(
      Self.inspect("diffusers_noalpha.safetensors"), Self.expected?["diffusers"]?["diffusers_noalpha"],
      file: "diffusers_noalpha")
  }

  @Test("MLX-LM: written by mlx with \"__metadata__\": null; transposed factors, absolute scale")
  func mlx() throws {
    try Self.compare(Self.inspect("mlx"), Self.expected?["mlx"], file: "mlx")
    try Self.compare(Self.inspect("mlx_b"), Self.expected?["mlx_mlx_b"], file: "mlx_b")
  }

  @Test("torchtune: native file (alpha and heads from the files beside it) equals its own PEFT export")
  func torchtune() throws {
    let native = try Self.inspect("torchtune/epoch_0/adapter_model.pt")
    try Self.compare(native, Self.expected?["torchtune"]?["modules"], file: "torchtune native")
    try Self.compare(Self.inspect("torchtune/epoch_0"), Self.expected?["torchtune"]?["modules"], file: "torchtune peft")
    // Permutation-sensitive: the native client and the PEFT export are one update (cosines 1).
    let both = try CLI.run([
      "inspect", Self.path("torchtune/epoch_0/adapter_model.pt"),
      Self.path("torchtune/epoch_0/adapter_model.safetensors"), "--json",
    ])
    #expect(both.status == 0, "\(both.stderr)")
    for row in try JSON.parse(both.stdout, path: "stdout")["layers"]?.arrayValue ?? [] {
      for key in ["cos_1", "cos_2"] { #expect(abs((row[key]?.doubleValue ?? 0) - 1) < 1e-9, "\(row)") }
    }
  }

  @Test("torchtune without its alpha or head counts is refused by name")
  func torchtuneRefusals() throws {
    let folder = Fixtures.scratch("torchtune")
    let pt = folder + "/adapter_model.pt"
    Fixtures.write(try Fixtures.read(Self.path("torchtune/epoch_0/adapter_model.pt")), to: pt)
    let noAlpha = try CLI.run(["inspect", pt, "--json"])
    #expect(noAlpha.status == 1 && noAlpha.stdout.contains("\"missing-alpha\"") && noAlpha.stdout.contains("torchtune"))
    let noHeads = try CLI.run(["inspect", pt, "--alpha", "4", "--json"])
    #expect(noHeads.status == 1 && noHeads.stdout.contains("\"unknown-row-order\""), "\(noHeads.stdout)")
    let given = try CLI.run([
      "inspect", pt, "--alpha", "4", "--base-config", Self.path("torchtune/epoch_0/config.json"), "--json",
    ])
    #expect(given.status == 0, "\(given.stdout)")
  }

  @Test("merge: two clients of each format, and a kohya with a diffusers client of the same UNet")
  func merges() throws {
    let folder = Fixtures.scratch("formats-merge")
    for (name, clients) in [
      ("kohya", ["kohya_b.safetensors", "kohya_c.safetensors"]), ("mixed", ["diffusers_a", "kohya_b.safetensors"]),
      ("mlx", ["mlx", "mlx_b"]),
    ] {
      let result = try CLI.run(
        ["merge"] + clients.map(Self.path) + ["--method", "stack", "-o", folder + "/" + name, "--json"])
      #expect(result.status == 0, "\(name): \(result.stdout) \(result.stderr)")
    }
    // The mixed stack (exact FedAvg of the updates) is the mean of diffusers' own dense updates (its kohya alpha rule aside).
    let merged = try JSON.parse(try CLI.run(["inspect", folder + "/mixed", "--json"]).stdout, path: "mixed")
    let want = try #require(Self.expected?["diffusers"]?["fedavg_a_b"]?.objectValue)
    for layer in merged["layers"]?.arrayValue ?? [] {
      let name = layer["module"]?.stringValue ?? ""
      guard name != "text_encoder.encoder.layers.0.self_attn.k_proj", let theirs = want.first(where: { $0.key == name })
      else { continue }
      let expected = theirs.value.doubleValue ?? 0
      #expect(abs((layer["norm_sBA"]?.doubleValue ?? 0) - expected) <= 1e-5 * expected, "\(name)")
    }
    // A kohya client with an MLX client: no module in common, refused with names.
    let mixed = try CLI.run(
      ["merge", Self.path("kohya_b.safetensors"), Self.path("mlx"), "-o", folder + "/no", "--json"])
    #expect(mixed.status == 1 && !Checkpoint.exists(folder + "/no"))
  }

  @Test("verify and convert read the other formats")
  func verifyConvert() throws {
    for name in ["kohya_b.safetensors", "diffusers_a", "mlx", "torchtune/epoch_0/adapter_model.pt"] {
      let result = try CLI.run(["verify", Self.path(name), "--json"])
      #expect(result.status == 0, "\(name): \(result.stdout)")
    }
    let folder = Fixtures.scratch("formats-convert")
    let converted = try CLI.run(["convert", Self.path("mlx"), folder + "/peft", "--json"])
    #expect(converted.status == 0, "\(converted.stdout) \(converted.stderr)")
  }

  @Test(
    "Bad input: a clear error naming the tensor, nothing written",
    arguments: [
      ("kohya_half_pair.safetensors", "unpaired-module", "lora_up.weight"),
      ("kohya_nan_alpha.safetensors", "bad-alpha", ".alpha"),
      ("kohya_negative_alpha.safetensors", "bad-alpha", ".alpha"),
      ("kohya_vector_alpha.safetensors", "bad-alpha", ".alpha"),
      ("kohya_conv_up_kernel.safetensors", "bad-factor-shape", "lora_up.weight"),
      ("kohya_conv_rank.safetensors", "bad-factor-shape", "lora_up.weight"),
      ("kohya_conv_linear.safetensors", "bad-factor-shape", "lora_up.weight"),
      ("kohya_loha.safetensors", "unsupported-lora-variant", "hada_w1_a"),
      ("kohya_dora.safetensors", "unsupported-lora-variant", "dora_scale"),
      ("mixed_kohya_peft.safetensors", "mixed-formats", "lora_A.weight"),
      ("mlx_rank", "bad-factor-shape", "lora_parameters.rank"), ("mlx_moe", "unsupported-lora-variant", "switch"),
      ("kohya_sgm_no_config.safetensors", "needs-base-config", "input_blocks_4_1_transformer_blocks_0_attn1_to_q"),
      ("kohya_sgm_not_sdxl.safetensors", "needs-base-config", "'sd_v1' is not SDXL's"),
      ("kohya_sgm_mixed.safetensors", "mixed-formats", "lora_unet_down_blocks_0_attentions_0"),
      ("kohya_sgm_upsampler.safetensors", "unsupported-lora-variant", "'unet.up_blocks.0.attentions.2.conv'"),
      ("kohya_sgm_slot.safetensors", "unsupported-lora-variant", "'unet.down_blocks.0.resnets.2.conv1'"),
      ("kohya_sgm_middle.safetensors", "unsupported-lora-variant", "lora_unet_middle_block_3_in_layers_2"),
      ("diffusers_mixed_names.safetensors", "mixed-formats", "attn1.to_q.lora.down.weight"),
      ("mlx_num_layers", "bad-config", "give num_layers >= 4"),
      ("mlx_keys", "bad-config", "'model.layers.0.self_attn.v_proj.lora_a'"),
    ])
  func refusals(_ file: String, _ code: String, _ named: String) throws {
    let folder = Fixtures.scratch("formats-bad")
    let input = Self.path("bad/" + file)
    let merge = try CLI.run(["merge", input, Self.path("kohya_b.safetensors"), "-o", folder + "/out", "--json"])
    #expect(merge.status == 1 && !Checkpoint.exists(folder + "/out"), "\(file)")
    let result = try CLI.run(["inspect", input, "--json"])
    let json = try JSON.parse(result.stdout, path: "stdout")
    let error = json["problems"]?.arrayValue?.first ?? json["error"]
    #expect(result.status == 1 && error?["code"]?.stringValue == code, "\(file): \(result.stdout)")
    #expect(error?["message"]?.stringValue?.contains(named) == true, "\(file): \(result.stdout)")
  }
}
