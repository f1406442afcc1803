import Checkpoints
import TestSupport
import Testing

@Suite("CLI: merge end to end on the PEFT and GGUF fixtures")
struct MergeCommandTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }

  func merge(_ arguments: [String]) throws -> (CLI.Result, JSON?) {
    let result = try CLI.run(["merge"] + arguments + ["--json", "--quiet"])
    return (result, try? JSON.parse(result.stdout, path: "stdout"))
  }

  @Test("Each method writes a PEFT folder and reports errors in the order svd <= flora-na <= fedavg")
  func methods() throws {
    let folder = Fixtures.scratch("merge")
    var errors: [String: Double] = [:]
    for method in ["fedavg", "flora-na", "svd", "stack"] {
      let (result, json) = try merge(Self.clients + ["--method", method, "-o", folder + "/" + method])
      #expect(result.status == 0, "\(result.stderr)")
      errors[method] = json?["model"]?["relative_error"]?.doubleValue
      let written = try Checkpoint.open(folder + "/" + method)
      #expect(written.metadata.contains { $0.key == "fedlora.method" && $0.value == method })
      #expect(Checkpoint.listDirectory(folder + "/" + method) == ["adapter_config.json", "adapter_model.safetensors"])
    }
    let expected = try Fixtures.json("adapters/expected.json")["sets"]?["abc_uniform"]
    #expect(abs((errors["fedavg"] ?? 0) - (expected?["model_fedavg_rel_error"]?.doubleValue ?? 1)) < 1e-6)
    #expect(abs((errors["flora-na"] ?? 0) - (expected?["model_flora_na_rel_error"]?.doubleValue ?? 1)) < 1e-5)
    #expect((errors["svd"] ?? 1) <= (errors["flora-na"] ?? 0) && (errors["flora-na"] ?? 1) <= (errors["fedavg"] ?? 0))
    #expect((errors["stack"] ?? 1) < 1e-9)
    let config = try JSON.parse(MappedFile.contents(of: folder + "/stack/adapter_config.json"), path: "config")
    #expect(config["r"]?.intValue == 24 && config["lora_alpha"]?.intValue == 24)
  }

  @Test(
    "--no-errors writes the same bytes as the merge with errors (fedavg over PEFT and llama.cpp GGUF clients, stack) and reports shapes and ranks, errors null"
  )
  func noErrors() throws {
    let folder = Fixtures.scratch("merge-no-errors")
    let mixed = [
      Fixtures.path("adapters/gguf/client_a.gguf"), Fixtures.path("adapters/client_b"),
      Fixtures.path("adapters/client_c"),
    ]
    for (method, clients) in [("fedavg", Self.clients), ("fedavg", mixed), ("stack", Self.clients)] {
      let with = folder + "/\(method)-\(clients.count)-with"
      let without = folder + "/\(method)-\(clients.count)-without"
      let (first, reported) = try merge(clients + ["--method", method, "-o", with, "--samples", "1,2,3"])
      let (second, json) = try merge(
        clients + ["--method", method, "-o", without, "--samples", "1,2,3", "--no-errors"])
      #expect(first.status == 0 && second.status == 0, "\(first.stderr) \(second.stderr)")
      #expect(
        try Fixtures.read(with + "/adapter_model.safetensors") == Fixtures.read(without + "/adapter_model.safetensors"),
        "\(method)")
      let layers = json?["layers"]?.arrayValue ?? []
      #expect(!layers.isEmpty && layers.count == reported?["layers"]?.arrayValue?.count)
      for (layer, full) in zip(layers, reported?["layers"]?.arrayValue ?? []) {
        #expect(layer["norm_T"] == .null && layer["relative_error"] == .null && layer["floor"] == .null)
        #expect(layer["shape"] == full["shape"] && layer["rank"] == full["rank"] && layer["name"] == full["name"])
      }
      #expect(json?["model"]?["relative_error"] == .null)
    }
    let text = try CLI.run(["merge"] + Self.clients + ["--method", "fedavg", "-o", folder + "/text", "--no-errors"])
    #expect(text.stdout.contains("errors not computed (--no-errors)") && !text.stdout.contains("||T||"))
  }

  @Test(
    "PyTorch .bin clients (PEFT's safe_serialization=False) merge to the tensors of their safetensors twins, bit for bit",
    arguments: ["fedavg", "flora-na", "svd"])
  func pytorchClients(_ method: String) throws {
    let folder = Fixtures.scratch("merge-bin")
    defer { Fixtures.remove(folder) }
    let pickled = ["client_a", "client_b", "client_c"].map { Fixtures.path("pytorch/" + $0) }
    let (first, _) = try merge(pickled + ["--method", method, "-o", folder + "/bin", "--samples", "1,2,3"])
    let (second, _) = try merge(Self.clients + ["--method", method, "-o", folder + "/st", "--samples", "1,2,3"])
    #expect(first.status == 0 && second.status == 0, "\(first.stderr) \(second.stderr)")
    let (one, other) = (try Checkpoint.open(folder + "/bin"), try Checkpoint.open(folder + "/st"))
    #expect(one.tensors.map(\.name) == other.tensors.map(\.name))
    for (a, b) in zip(one.tensors, other.tensors) { #expect(try a.copyBytes() == b.copyBytes(), "\(a.name)") }
    // Into a sharded .bin base (transformers' pytorch_model.bin.index.json): its safetensors twin's merge.
    for (base, out) in [
      (Fixtures.path("pytorch/sharded_base"), "/base-bin.safetensors"),
      (Fixtures.path("adapters/base"), "/base-st.safetensors"),
    ] {
      #expect(
        try CLI.run(
          ["merge"] + pickled + [
            "--method", method == "svd" ? "exact" : method, "--base", base, "-o", folder + out, "--quiet",
          ]
        ).status == 0)
    }
    let (merged, twin) = (
      try Checkpoint.open(folder + "/base-bin.safetensors"), try Checkpoint.open(folder + "/base-st.safetensors")
    )
    for tensor in twin.tensors {
      #expect(try merged.tensor(named: tensor.name)?.copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }
    let evil = try CLI.run([
      "merge", Fixtures.path("pytorch/evil_eval.bin"), Self.clients[0], "-o", folder + "/evil", "--alpha", "16",
    ])
    #expect(evil.status == 1 && evil.stderr.contains("__builtin__.eval") && !Checkpoint.exists(folder + "/evil"))
  }

  @Test(
    "--dry-run checks and plans without writing: each file with its tensors, dtypes and bytes and what it replaces; each layer's rank"
  )
  func dryRun() throws {
    let folder = Fixtures.scratch("dry-run")
    defer { Fixtures.remove(folder) }
    Fixtures.write(Array("keep".utf8), to: folder + "/existing.gguf")
    let (run, json) = try merge(Self.clients + ["--method", "stack", "-o", folder + "/existing.gguf", "--dry-run"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(json?["dry_run"]?.boolValue == true)
    let file = json?["files"]?.arrayValue?.first
    #expect(file?["path"]?.stringValue == folder + "/existing.gguf" && file?["replaces"]?.boolValue == true)
    #expect(file?["tensors"]?.intValue == 28 && (file?["bytes"]?.intValue ?? 0) > 0)
    #expect(json?["layers"]?.arrayValue?.first?["rank"]?.intValue == 24)
    #expect(try Fixtures.read(folder + "/existing.gguf") == Array("keep".utf8), "nothing written")
    #expect(Checkpoint.listDirectory(folder) == ["existing.gguf"], "no temporaries")
    // Into a sharded base: shards, index and companions listed, nothing solved or written.
    let (base, plan) = try merge([
      Self.clients[0], Self.clients[1], "--method", "exact", "--base", Fixtures.path("pytorch/sharded_base"), "-o",
      folder + "/merged", "--dry-run",
    ])
    #expect(base.status == 0, "\(base.stderr)")
    let paths = plan?["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? []
    #expect(
      paths.contains(folder + "/merged/model.safetensors.index.json") && paths.contains(folder + "/merged/config.json"))
    #expect(!Checkpoint.exists(folder + "/merged"))
    // Refused options are refused in a dry run too; convert plans as well.
    #expect(
      try CLI.run(["merge"] + Self.clients + ["-o", folder + "/x", "--method", "svd", "--no-errors", "--dry-run"])
        .status == 64)
    let convert = try CLI.run([
      "convert", Fixtures.path("pytorch/sharded_base"), folder + "/m.safetensors", "--dry-run", "--json", "--quiet",
    ])
    let converted = try JSON.parse(convert.stdout, path: "stdout")
    #expect(convert.status == 0 && converted["files"]?.arrayValue?.first?["tensors"]?.intValue == 21)
    #expect(!Checkpoint.exists(folder + "/m.safetensors"))
  }

  @Test(
    "verify: each unsafe global of a pickle a failure with its name and offset; --data checks a .bin's storages against their CRC-32"
  )
  func verifyPickles() throws {
    let run = try CLI.run(["verify", Fixtures.path("pytorch/evil_subprocess.bin"), "--json"])
    let problem = try JSON.parse(run.stdout, path: "stdout")["files"]?.arrayValue?.first?["problems"]?.arrayValue?.first
    #expect(run.status == 1 && problem?["code"]?.stringValue == "unsafe-global")
    #expect(problem?["global"]?.stringValue == "commands.Popen" && (problem?["offset"]?.intValue ?? 0) > 0)
    // One bit flipped in a storage: the structure opens, the data check names the entry.
    let folder = Fixtures.scratch("verify-crc")
    var bytes = try Fixtures.read(Fixtures.path("pytorch/client_a/adapter_model.bin"))
    bytes[bytes.count / 2] ^= 1
    Fixtures.write(bytes, to: folder + "/flipped.bin")
    #expect(try CLI.run(["verify", folder + "/flipped.bin"]).status == 0)
    let checked = try CLI.run(["verify", "--data", folder + "/flipped.bin"])
    #expect(checked.status == 1 && checked.stdout.contains("fails its CRC-32 check"), "\(checked.stdout)")
    #expect(try CLI.run(["verify", "--data", Fixtures.path("pytorch/client_a")]).status == 0)
  }

  @Test("Library errors carry no flags; the CLI adds what a flag can do about them, by code")
  func hints() throws {
    let (missing, json) = try merge([
      Self.clients[0], Fixtures.path("adapters/client_embed"), "-o", Fixtures.scratch("hint") + "/x",
    ])
    #expect(missing.status == 1 && json?["error"]?["code"]?.stringValue == "module-missing")
    #expect(json?["error"]?["message"]?.stringValue?.hasSuffix("(--allow-missing treats it as a zero update)") == true)
  }

  @Test("GGUF output follows the llama.cpp LoRA convention and mixed-format clients merge")
  func gguf() throws {
    let folder = Fixtures.scratch("merge-gguf")
    let clients = [
      Fixtures.path("adapters/gguf/client_a.gguf"), Fixtures.path("adapters/client_b"),
      Fixtures.path("adapters/client_c"),
    ]
    let (result, json) = try merge(clients + ["--method", "fedavg", "-o", folder + "/out.gguf", "--samples", "1,2,3"])
    #expect(result.status == 0, "\(result.stderr)")
    let expected = try Fixtures.json("adapters/expected.json")["sets"]?["abc_samples_1_2_3"]?["model_fedavg_rel_error"]?
      .doubleValue
    #expect(abs((json?["model"]?["relative_error"]?.doubleValue ?? 0) - (expected ?? 1)) < 1e-6)
    let written = try Checkpoint.open(folder + "/out.gguf")
    #expect(written.gguf?["general.type"]?.stringValue == "adapter")
    #expect(written.gguf?["adapter.type"]?.stringValue == "lora")
    #expect(written.tensor(named: "blk.0.attn_q.weight.lora_a")?.shape == [8, 64])
  }

  @Test("Bad input fails with exit 1 (usage errors 64), a named error and no output")
  func failures() throws {
    let folder = Fixtures.scratch("merge-fail")
    let (dora, json) = try merge([Fixtures.path("adapters/client_dora"), "-o", folder + "/x"])
    #expect(dora.status == 1)
    #expect(json?["error"]?["code"]?.stringValue == "dora-not-mergeable")
    let (weights, _) = try merge(Self.clients + ["--weights", "1,2", "-o", folder + "/y"])
    #expect(weights.status == 64 && weights.stderr.contains("3 clients"), "a count argv reveals is a usage error")
    #expect(try CLI.run(["merge", Self.clients[0], "-o", folder + "/z", "--method", "nope"]).status == 64)
    #expect(Checkpoint.listDirectory(folder).isEmpty)
  }

  @Test("--scope model: one (p, q) for all layers, between the per-layer solution and FedAvg")
  func scopeModel() throws {
    let folder = Fixtures.scratch("scope")
    var errors: [String: Double] = [:]
    for (name, arguments) in [
      ("layer", ["--method", "flora-na"]), ("model", ["--method", "flora-na", "--scope", "model"]),
      ("fedavg", ["--method", "fedavg"]),
    ] {
      let (result, json) = try merge(Self.clients + arguments + ["-o", folder + "/" + name])
      #expect(result.status == 0, "\(result.stderr)")
      errors[name] = json?["model"]?["relative_error"]?.doubleValue
      if name == "model" {
        let ps = json?["layers"]?.arrayValue?.compactMap { $0["p"] } ?? []
        #expect(ps.count > 1 && ps.allSatisfy { $0 == ps[0] }, "the same coefficients in every layer")
      }
    }
    let (layer, model, fedavg) = (errors["layer"] ?? 1, errors["model"] ?? 1, errors["fedavg"] ?? 0)
    #expect(layer <= model && model <= fedavg, "\(layer) <= \(model) <= \(fedavg)")
  }

  @Test("Output bytes are the same on every run")
  func deterministic() throws {
    let folder = Fixtures.scratch("merge-det")
    for name in ["one", "two"] {
      _ = try merge(Self.clients + ["--method", "flora-na", "-o", folder + "/\(name).safetensors"])
    }
    #expect(try Fixtures.read(folder + "/one.safetensors") == Fixtures.read(folder + "/two.safetensors"))
  }
}
