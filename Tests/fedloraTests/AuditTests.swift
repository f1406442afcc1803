import Checkpoints
import Foundation
import TestSupport
import Testing

/// Audit-grade numbers: ranks that mean what they say, LoRA biases carried exactly, verdicts a
/// pipeline can gate on, inconsistent adapters flagged or refused.
@Suite("CLI: audit-grade reads and numbers")
struct AuditTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }

  static func json(_ arguments: [String]) throws -> (CLI.Result, JSON) {
    let result = try CLI.run(arguments + ["--json"])
    return (result, try JSON.parse(result.stdout, path: "stdout"))
  }

  @Test("F32, F16 and BF16 twins report the same ranks and singular values; numerical_rank >= stable_rank everywhere")
  func twins() throws {
    var reference: [JSON]?
    for dtype in ["f32", "f16", "bf16"] {
      let (result, document) = try Self.json(["inspect", Fixtures.path("adapters/twins/" + dtype), "--top", "8"])
      #expect(result.status == 0)
      let layers = try #require(document["layers"]?.arrayValue)
      let ranks = layers.map { [$0["numerical_rank"], $0["sigma_8"], $0["flags"]] }
      #expect(layers.allSatisfy { $0["numerical_rank"]?.intValue == 8 && $0["flags"]?.stringValue == "" }, "\(dtype)")
      if let reference {
        #expect(ranks == reference.map { [$0["numerical_rank"], $0["sigma_8"], $0["flags"]] }, "\(dtype)")
      }
      reference = reference ?? layers
    }
    for adapter in [
      "client_a", "client_bf16", "client_r4", "client_rslora", "client_pattern", "client_embed", "client_bias",
    ] {
      let (_, document) = try Self.json(["inspect", Fixtures.path("adapters/" + adapter)])
      for layer in document["layers"]?.arrayValue ?? [] {
        #expect(
          Double(layer["numerical_rank"]?.intValue ?? 0) >= (layer["stable_rank"]?.doubleValue ?? .infinity) - 1e-9,
          "\(adapter): \(layer)")
      }
    }
  }

  @Test(
    "lora_B.bias: carried by every rule as sum w s b / s, lora_bias in the config, norm_bias in inspect, refused by GGUF outputs"
  )
  func bias() throws {
    let folder = Fixtures.scratch("bias")
    let (a, b) = (Fixtures.path("adapters/client_bias"), Fixtures.path("adapters/client_bias_b"))
    let name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.bias"
    let biases = try [a, b].map { try #require(Checkpoint.open($0).tensor(named: name)).floats() }
    for method in ["fedavg", "flora-na", "svd", "stack"] {
      let out = folder + "/" + method
      #expect(try CLI.run(["merge", a, b, "--method", method, "--samples", "1,3", "-o", out, "--quiet"]).status == 0)
      let config = try JSON.parse(MappedFile.contents(of: out + "/adapter_config.json"), path: "config")
      #expect(config["lora_bias"] == .bool(true))
      // No patterns for these modules.
      let scale = (config["lora_alpha"]?.doubleValue ?? 0) / (config["r"]?.doubleValue ?? 1)
      let written = try #require(Checkpoint.open(out).tensor(named: name)).floats()
      for i in written.indices {
        let ideal = 0.25 * 2 * Double(biases[0][i]) + 0.75 * 2 * Double(biases[1][i])  // s_u = 16 / 8
        #expect(abs(Double(written[i]) * scale - ideal) <= 1e-6 * max(1, abs(ideal)), "\(method) \(i)")
      }
    }
    let (shown, document) = try Self.json(["inspect", a])
    #expect(shown.status == 0 && (document["layers"]?.arrayValue?.first?["norm_bias"]?.doubleValue ?? 0) > 0)
    let gguf = try CLI.run(["merge", a, b, "-o", folder + "/x.gguf"])
    #expect(gguf.status == 1 && gguf.stderr.contains("lora_B.bias") && gguf.stderr.contains("GGUF"))
    #expect(try CLI.run(["convert", a, folder + "/y.gguf"]).status == 1)
    let llama = try CLI.run([
      "merge", a, b, "--method", "exact", "--base", Fixtures.path("adapters/base"), "-o", folder + "/m.safetensors",
    ])
    #expect(
      llama.status == 1 && llama.stderr.contains("has no model.layers.0.self_attn.q_proj.bias"), "\(llama.stderr)")
    // A base with biases (GPT-2): b0 + sum w s b.
    let (ga, gb) = (Fixtures.path("adapters/client_gpt2_bias_a"), Fixtures.path("adapters/client_gpt2_bias_b"))
    let base = Fixtures.path("adapters/gpt2_base")
    #expect(
      try CLI.run(["merge", ga, gb, "--method", "exact", "--base", base, "-o", folder + "/g.safetensors", "--quiet"])
        .status == 0)
    let module = "transformer.h.0.attn.c_attn"
    let b0 = try #require(Checkpoint.open(base).tensor(named: module + ".bias")).floats()
    let clientBiases = try [ga, gb].map {
      try #require(Checkpoint.open($0).tensor(named: "base_model.model.\(module).lora_B.bias")).floats()
    }
    let merged = try #require(Checkpoint.open(folder + "/g.safetensors").tensor(named: module + ".bias")).floats()
    for i in merged.indices {
      let ideal = Double(b0[i]) + 0.5 * 2 * (Double(clientBiases[0][i]) + Double(clientBiases[1][i]))  // s = 8 / 4
      #expect(abs(Double(merged[i]) - ideal) <= 1e-6 * max(1, abs(ideal)))
    }
  }

  @Test("--against: recorded weights and digests used, four verdicts, --expect gates with exit 1")
  func against() throws {
    let folder = Fixtures.scratch("against")
    let (a, b, c) = (Self.clients[0], Self.clients[1], Self.clients[2])
    #expect(try CLI.run(["merge", a, b, c, "--samples", "1,2,3", "-o", folder + "/na", "--quiet"]).status == 0)
    #expect(try CLI.run(["merge", a, b, c, "--method", "fedavg", "-o", folder + "/fa", "--quiet"]).status == 0)
    let written = try Checkpoint.open(folder + "/na")
    let recorded = written.metadata.first { $0.key == "fedlora.clients" }?.value
    #expect(recorded == JSON.array([a, b, c].map { .string($0) }).compactText)
    let digest = try MappedFile(path: a + "/adapter_model.safetensors").sha256()
    #expect(written.metadata.first { $0.key == "fedlora.client_sha256" }?.value.contains(digest) == true)
    #expect(digest.count == 64)

    // The recorded weights, matched by digest even when the clients come in another order.
    for order in [[a, b, c], [c, a, b]] {
      let (result, document) = try Self.json(
        ["inspect"] + order + ["--against", folder + "/na", "--expect", "flora-na"])
      #expect(result.status == 0 && document["weights_source"] == .string("recorded"), "\(result.stderr)")
      #expect(document["verdict_code"] == .string("as-good-as-flora-na") && document["expectation_met"] == .bool(true))
    }
    // Given weights that differ from the record: a warning, and the given ones.
    let (given, warned) = try Self.json(["inspect", a, b, c, "--against", folder + "/na", "--weights", "1,1,1"])
    #expect(
      given.status == 0
        && warned["warnings"]?.arrayValue?.contains { $0.stringValue?.contains("differ from those") == true } == true)
    // A client the record does not know: named.
    let (_, foreign) = try Self.json([
      "inspect", a, b, Fixtures.path("adapters/client_r4"), "--against", folder + "/fa",
    ])
    #expect(
      foreign["warnings"]?.arrayValue?.contains { $0.stringValue?.contains("client_r4 is none of the clients") == true }
        == true)
    // Verdicts and gates.
    let (fedavg, plain) = try Self.json(["inspect", a, b, c, "--against", folder + "/fa", "--expect", "flora-na"])
    #expect(
      fedavg.status == 1 && plain["ok"] == .bool(false) && plain["error"]?["code"] == .string("expectation-failed"))
    #expect(plain["verdict_code"] == .string("no-better-than-fedavg"))
    #expect(try CLI.run(["inspect", a, b, c, "--against", folder + "/fa", "--expect", "fedavg"]).status == 0)
    let (unrelated, other) = try Self.json(["inspect", a, b, c, "--against", Fixtures.path("adapters/client_r4")])
    #expect(unrelated.status == 0 && other["verdict_code"] == .string("not-an-aggregate"))
    // A BF16 FedAvg merge is FedAvg within the rounding its dtype makes, not FLoRA-NA.
    #expect(
      try CLI.run(["merge", a, b, c, "--method", "fedavg", "--dtype", "bf16", "-o", folder + "/fa16", "--quiet"]).status
        == 0)
    let (bf16, rounded) = try Self.json(["inspect", a, b, c, "--against", folder + "/fa16", "--expect", "fedavg"])
    #expect(bf16.status == 0 && rounded["verdict_code"] == .string("no-better-than-fedavg"), "\(rounded)")
    #expect(try CLI.run(["inspect", a, "--expect", "fedavg"]).status == 64)
    // Nothing to judge is no pass.
    let (nothing, unverifiable) = try Self.json([
      "inspect", a, b, c, "--against", folder + "/fa", "--expect", "fedavg", "--filter", "nomatch",
    ])
    #expect(nothing.status == 1 && unverifiable["error"]?["code"] == .string("expectation-unverifiable"))
  }

  @Test(
    "Inconsistent adapters: config rank mismatches flagged and refused, unreadable modules shown beside the good ones, configs verified"
  )
  func inconsistent() throws {
    let bad = { (name: String) in Fixtures.path("adapters/bad/" + name) }
    let (flagged, document) = try Self.json(["inspect", bad("rank_mismatch")])
    #expect(
      flagged.status == 0
        && document["layers"]?.arrayValue?.allSatisfy { $0["flags"]?.stringValue == "config-rank-mismatch" } == true)
    let pattern = try CLI.run(["inspect", bad("pattern_mismatch"), "--csv"])
    #expect(
      pattern.stdout.split(separator: "\n").filter { !$0.hasPrefix("# ") && $0.contains("config-rank-mismatch") }.count
        == 2)
    for name in ["rank_mismatch", "pattern_mismatch"] {
      let merge = try CLI.run(["merge", bad(name), Self.clients[1], "-o", Fixtures.scratch("x") + "/out"])
      #expect(
        merge.status == 1 && merge.stderr.contains("gives rank") && merge.stderr.contains("tensors have rank 8"),
        "\(merge.stderr)")
    }
    let (unpaired, partial) = try Self.json(["inspect", bad("unpaired")])
    #expect(unpaired.status == 1 && partial["layers"]?.arrayValue?.count == 14, "every good module and the bad one")
    #expect(partial["error"]?["code"] == .string("unreadable-modules"))
    #expect(
      partial["layers"]?.arrayValue?.contains { $0["flags"]?.stringValue == "unreadable: unpaired-module" } == true)
    let truncated = try CLI.run(["inspect", bad("truncated_config")])
    #expect(truncated.status == 1 && truncated.stderr.contains("adapter_config.json: invalid JSON at byte offset"))
    for (name, code) in [
      ("truncated_config", "bad-config"), ("rank_mismatch", "config-rank-mismatch"), ("unpaired", "unpaired-module"),
    ] {
      let (verify, report) = try Self.json(["verify", bad(name)])
      let codes =
        report["files"]?.arrayValue?.first?["problems"]?.arrayValue?.compactMap { $0["code"]?.stringValue } ?? []
      #expect(verify.status == 1 && codes.contains(code), "\(name): \(codes)")
    }
    #expect(try CLI.run(["verify", Self.clients[0]]).status == 0)
  }

  @Test("Clients that cannot belong to one model are refused; target_modules lists exactly the modules written")
  func oneModel() throws {
    let folder = Fixtures.scratch("one-model")
    let llama = Self.clients[0]
    let gpt2 = Fixtures.path("adapters/client_gpt2")
    let disjoint = try CLI.run(["merge", llama, gpt2, "--allow-missing", "-o", folder + "/x"])
    #expect(
      disjoint.status == 1 && disjoint.stderr.contains("no module is adapted by every client"), "\(disjoint.stderr)")
    let other = Fixtures.path("adapters/bad/other_base")
    let bases = try CLI.run(["merge", llama, other, "-o", folder + "/y"])
    #expect(
      bases.status == 1 && bases.stderr.contains("meta-llama/Llama-2-7b-hf")
        && bases.stderr.contains("--allow-different-bases"), "\(bases.stderr)")
    #expect(
      try CLI.run(["merge", llama, other, "-o", folder + "/y", "--allow-different-bases", "--quiet"]).status == 0)
    let config = try JSON.parse(MappedFile.contents(of: folder + "/y/adapter_config.json"), path: "config")
    let targets = config["target_modules"]?.arrayValue?.compactMap(\.stringValue) ?? []
    #expect(targets.count == 14 && targets.allSatisfy { $0.hasPrefix("model.layers.") })
    let written = try Checkpoint.open(folder + "/y").tensors.compactMap { tensor in
      tensor.name.hasSuffix(".lora_A.weight")
        ? String(tensor.name.dropFirst("base_model.model.".count).dropLast(".lora_A.weight".count)) : nil
    }
    #expect(Set(targets) == Set(written))
  }
}
