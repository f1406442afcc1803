import Checkpoints
import TestSupport
import Testing
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

@Suite("CLI: merge --base and adapter conversion")
struct BaseMergeTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }
  static let base = Fixtures.path("adapters/base")

  /// `W0 + sum_u w_u s_u B_u A_u` of one module, densely in fp64.
  func denseExact(_ module: String, weights: [Double]) throws -> [Double] {
    let w0 = try #require(try Checkpoint.open(Self.base).tensor(named: module + ".weight"))
    var result = try w0.floats().map(Double.init)
    let (d, k) = (w0.shape[0], w0.shape[1])
    for (client, weight) in zip(Self.clients, weights) {
      let adapter = try Checkpoint.open(client)
      let config = try JSON.parse(MappedFile.contents(of: client + "/adapter_config.json"), path: "config")
      let scale = (config["lora_alpha"]?.doubleValue ?? 0) / Double(config["r"]?.intValue ?? 1)
      let a = try #require(adapter.tensor(named: "base_model.model.\(module).lora_A.weight")).floats()
      let b = try #require(adapter.tensor(named: "base_model.model.\(module).lora_B.weight")).floats()
      let r = a.count / k
      for i in 0..<d {
        for j in 0..<k {
          for t in 0..<r { result[i * k + j] += weight * scale * Double(b[i * r + t]) * Double(a[t * k + j]) }
        }
      }
    }
    return result
  }

  @Test("exact: adapted weights equal W0 + T, every other tensor is copied byte for byte")
  func exact() throws {
    let folder = Fixtures.scratch("base")
    let result = try CLI.run(
      ["merge"] + Self.clients + [
        "--method", "exact", "--base", Self.base, "-o", folder + "/out", "--samples", "1,2,3", "--quiet",
      ])
    #expect(result.status == 0, "\(result.stderr)")
    let merged = try Checkpoint.open(folder + "/out")
    let original = try Checkpoint.open(Self.base)
    #expect(Checkpoint.listDirectory(folder + "/out").contains("config.json"))
    for tensor in original.tensors {
      let out = try #require(merged.tensor(named: tensor.name))
      #expect(out.dtype == tensor.dtype && out.shape == tensor.shape)
      if tensor.name.hasSuffix("q_proj.weight") || tensor.name.hasSuffix("down_proj.weight") {
        let want = try denseExact(String(tensor.name.dropLast(7)), weights: [1.0 / 6, 2.0 / 6, 3.0 / 6])
        let got = try out.floats()
        let scale = want.map(abs).max() ?? 1
        #expect(zip(got, want).allSatisfy { abs(Double($0) - $1) <= 1e-6 * scale }, "\(tensor.name)")
      } else if !tensor.name.contains("_proj") {
        #expect(try out.copyBytes() == tensor.copyBytes(), "\(tensor.name) copied")
      }
    }
  }

  @Test("A sentence-transformers base: the module folders modules.json lists travel with the merged model")
  func sentenceTransformers() throws {
    let folder = Fixtures.scratch("st-base")
    defer { Fixtures.remove(folder) }
    let base = folder + "/base"
    for sub in ["", "/1_Pooling", "/2_Dense", "/unlisted"] { mkdir(base + sub, 0o755) }
    for name in ["config.json", "model.safetensors"] {
      Fixtures.write(try Fixtures.read(Self.base + "/" + name), to: base + "/" + name)
    }
    Fixtures.write(
      Array(
        #"[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}, {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}, {"idx": 3, "name": "3", "path": "../escape", "type": "x"}]"#
          .utf8), to: base + "/modules.json")
    Fixtures.write(Array(#"{"pooling_mode_mean_tokens": true}"#.utf8), to: base + "/1_Pooling/config.json")
    Fixtures.write(Array("dense weights".utf8), to: base + "/2_Dense/model.safetensors")
    Fixtures.write(Array("not listed".utf8), to: base + "/unlisted/x")
    for out in [folder + "/merged", folder + "/merged"] {  // a new folder, then the same one again
      let run = try CLI.run(["merge"] + Self.clients + ["--method", "exact", "--base", base, "-o", out, "--quiet"])
      #expect(run.status == 0, "\(run.stderr)")
    }
    let out = folder + "/merged"
    #expect(try Fixtures.read(out + "/1_Pooling/config.json") == Fixtures.read(base + "/1_Pooling/config.json"))
    #expect(try Fixtures.read(out + "/2_Dense/model.safetensors") == Array("dense weights".utf8))
    #expect(!Checkpoint.exists(out + "/unlisted") && Checkpoint.listDirectory(out + "/1_Pooling") == ["config.json"])
    let dry = try CLI.run(
      ["merge"] + Self.clients + ["--method", "exact", "--base", base, "-o", folder + "/dry", "--dry-run", "--json"])
    let planned = try JSON.parse(dry.stdout, path: "dry")["files"]?.arrayValue?.compactMap { $0["path"]?.stringValue }
    #expect(planned?.contains(folder + "/dry/2_Dense/model.safetensors") == true && !Checkpoint.exists(folder + "/dry"))
  }

  @Test("fedex: base with the residual plus the FedAvg adapter equals the exact merge")
  func fedex() throws {
    let folder = Fixtures.scratch("fedex")
    for (method, out) in [("fedex", "/fedex.safetensors"), ("exact", "/exact.safetensors")] {
      let result = try CLI.run(
        ["merge"] + Self.clients + ["--method", method, "--base", Self.base, "-o", folder + out, "--quiet"])
      #expect(result.status == 0, "\(result.stderr)")
    }
    // Fold the written FedAvg adapter into the fedex base with fedlora itself (one client: exact).
    let folded = try CLI.run([
      "merge", folder + "/fedex.safetensors.adapter", "--method", "exact", "--base", folder + "/fedex.safetensors",
      "-o", folder + "/sum.safetensors", "--quiet",
    ])
    #expect(folded.status == 0, "\(folded.stderr)")
    let exact = try Checkpoint.open(folder + "/exact.safetensors")
    let sum = try Checkpoint.open(folder + "/sum.safetensors")
    for tensor in exact.tensors {
      let (a, b) = (try tensor.floats(), try #require(sum.tensor(named: tensor.name)).floats())
      let scale = a.map(abs).max() ?? 1
      #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-5 * scale }, "\(tensor.name)")
    }
  }

  @Test("Adapter conversion PEFT -> GGUF -> PEFT keeps every module's update")
  func adapterRoundTrip() throws {
    let folder = Fixtures.scratch("adapter-convert")
    let source = Fixtures.path("adapters/client_pattern")
    #expect(try CLI.run(["convert", source, folder + "/a.gguf"]).status == 0)
    #expect(try CLI.run(["convert", folder + "/a.gguf", folder + "/back"]).status == 0)
    let audit = try CLI.run(["inspect", source, "--against", folder + "/back", "--json"])
    let json = try JSON.parse(audit.stdout, path: "stdout")
    #expect((json["model"]?["against"]?.doubleValue ?? 1) < 1e-6)
  }

  @Test("merge --base refuses exact without a base, and a base that lacks an adapted weight")
  func refusals() throws {
    #expect(try CLI.run(["merge"] + Self.clients + ["--method", "exact", "-o", "/tmp/never"]).status == 64)
    let folder = Fixtures.scratch("base-bad")
    let result = try CLI.run(
      ["merge"] + Self.clients + [
        "--method", "fedavg", "--base", Fixtures.path("sharded"), "-o", folder + "/x", "--quiet",
      ])
    #expect(result.status == 1 && result.stderr.contains("no base weight"))
    #expect(Checkpoint.listDirectory(folder).isEmpty)
  }
}

@Suite("CLI: llama-family conversion between Hugging Face and llama.cpp")
struct LlamaConversionTests {
  @Test(
    "Names, q/k row order and hyper-parameters; the round trip is bit-exact, and merging into the GGUF equals merging into the original"
  )
  func roundTrip() throws {
    let folder = Fixtures.scratch("llama")
    let base = Fixtures.path("adapters/base")
    #expect(try CLI.run(["convert", base, folder + "/m.gguf"]).status == 0)
    let gguf = try Checkpoint.open(folder + "/m.gguf")
    #expect(
      gguf.gguf?["llama.attention.head_count"] == .u32(4) && gguf.gguf?["llama.attention.head_count_kv"] == .u32(2))
    let hf = try Checkpoint.open(base)
    // q rows (head, half, i) -> (head, i, half), head_dim 16: row 1 of llama.cpp is row 8 of HF.
    let q = try #require(hf.tensor(named: "model.layers.0.self_attn.q_proj.weight")).floats()
    let permuted = try #require(gguf.tensor(named: "blk.0.attn_q.weight")).floats()
    #expect(Array(permuted[64..<128]) == Array(q[(8 * 64)..<(9 * 64)]))
    #expect(try CLI.run(["convert", folder + "/m.gguf", folder + "/back.safetensors"]).status == 0)
    let back = try Checkpoint.open(folder + "/back.safetensors")
    for tensor in hf.tensors {
      #expect(try #require(back.tensor(named: tensor.name)).copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }

    let clients = ["client_a", "client_b"].map { Fixtures.path("adapters/" + $0) }
    #expect(
      try CLI.run(
        ["merge"] + clients + [
          "--method", "exact", "--base", folder + "/m.gguf", "-o", folder + "/merged.gguf", "--quiet",
        ]
      ).status == 0)
    #expect(
      try CLI.run(
        ["merge"] + clients + ["--method", "exact", "--base", base, "-o", folder + "/merged.safetensors", "--quiet"]
      ).status == 0)
    #expect(try CLI.run(["convert", folder + "/merged.gguf", folder + "/merged-back.safetensors"]).status == 0)
    let (one, two) = (
      try Checkpoint.open(folder + "/merged.safetensors"), try Checkpoint.open(folder + "/merged-back.safetensors")
    )
    for tensor in one.tensors {
      let (a, b) = (try tensor.floats(), try #require(two.tensor(named: tensor.name)).floats())
      #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(tensor.name)")
    }
  }
}

extension LlamaConversionTests {
  @Test(
    "convert writes the vocabulary of the tokenizer files beside the model and Llama 3.1's rope factors, as llama.cpp's converter does"
  )
  func vocabulary() throws {
    let folder = Fixtures.scratch("vocab")
    for (model, tokenizer, summary) in [
      ("llama_spm", "llama", "SentencePiece tokenizer.model, 368 tokens"),
      ("llama_bpe", "gpt2", "byte-level BPE tokenizer.json (llama-bpe), 423 tokens, 164 merges"),
    ] {
      let run = try CLI.run(["convert", Fixtures.path("tokenizers/" + model), folder + "/\(model).gguf"])
      #expect(run.status == 0 && run.stdout.contains("vocabulary from " + summary), "\(run.stderr)")
      let gguf = try #require(try Checkpoint.open(folder + "/\(model).gguf").gguf)
      #expect(gguf["tokenizer.ggml.model"] == .string(tokenizer) && gguf["general.architecture"] == .string("llama"))
      let reference = try GGUFFile(path: Fixtures.path("tokenizers/expected/\(model).gguf"))
      for (key, value) in reference.metadata where key.hasPrefix("tokenizer.") { #expect(gguf[key] == value, "\(key)") }
    }
    // Llama 3.1's rotary scaling (llama_bpe's config): the converter's factors, bit for bit (torch float32).
    let llama3 = try Checkpoint.open(folder + "/llama_bpe.gguf")
    #expect(llama3.gguf?["llama.rope.freq_base"] == .f32(500_000) && llama3.tensors.first?.name == "rope_freqs.weight")
    #expect(try #require(llama3.tensor(named: "rope_freqs.weight")).floats() == [1, 1, 0x1.58e65cp+1, 8])
    #expect(try Checkpoint.open(folder + "/llama_spm.gguf").tensor(named: "rope_freqs.weight") == nil)
    // Back to Hugging Face: the same tensors, bit for bit (the rope factors stay behind).
    #expect(try CLI.run(["convert", folder + "/llama_bpe.gguf", folder + "/back.safetensors", "--quiet"]).status == 0)
    let (original, back) = (
      try Checkpoint.open(Fixtures.path("tokenizers/llama_bpe")), try Checkpoint.open(folder + "/back.safetensors")
    )
    #expect(Set(back.tensors.map(\.name)) == Set(original.tensors.map(\.name)))
    for tensor in original.tensors {
      #expect(try #require(back.tensor(named: tensor.name)).copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }
  }

  @Test("A broken tokenizer file beside the model fails the conversion by name, and nothing is written")
  func brokenTokenizer() throws {
    let folder = Fixtures.scratch("broken-tok")
    for name in ["config.json", "model.safetensors", "tokenizer_config.json"] {
      Fixtures.write(try Fixtures.read(Fixtures.path("tokenizers/llama_bpe/" + name)), to: folder + "/" + name)
    }
    Fixtures.write(Array(#"{"model": {"type": "BPE", "vocab": {"a": 0,}}}"#.utf8), to: folder + "/tokenizer.json")
    let output = Fixtures.scratch("broken-tok-out")
    let run = try CLI.run(["convert", folder, output + "/out.gguf", "--quiet"])
    #expect(run.status == 1 && run.stderr.contains("tokenizer.json: invalid JSON at byte offset"), "\(run.stderr)")
    #expect(Checkpoint.listDirectory(output).isEmpty)
  }

  @Test(
    "merge --base of a safetensors llama into .gguf writes what llama.cpp runs: its names, row order and hyper-parameters"
  )
  func mergeIntoGGUF() throws {
    let folder = Fixtures.scratch("llama-merge")
    let clients = ["client_a", "client_b"].map { Fixtures.path("adapters/" + $0) }
    let base = Fixtures.path("adapters/base")
    let run = try CLI.run(
      ["merge"] + clients + ["--method", "exact", "--base", base, "-o", folder + "/direct.gguf", "--quiet"])
    // The fixture has no tokenizer.
    #expect(run.status == 0 && run.stderr.contains("no vocabulary written"), "\(run.stderr)")
    #expect(try CLI.run(["convert", base, folder + "/base.gguf", "--quiet"]).status == 0)
    #expect(
      try CLI.run(
        ["merge"] + clients + [
          "--method", "exact", "--base", folder + "/base.gguf", "-o", folder + "/via.gguf", "--quiet",
        ]
      ).status == 0)
    let (direct, via) = (try Checkpoint.open(folder + "/direct.gguf"), try Checkpoint.open(folder + "/via.gguf"))
    #expect(direct.gguf?["llama.block_count"] == .u32(2) && direct.tensors.map(\.name) == via.tensors.map(\.name))
    for tensor in direct.tensors {
      let (a, b) = (try tensor.floats(), try #require(via.tensor(named: tensor.name)).floats())
      #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(tensor.name)")
    }
  }
}

@Suite("CLI: llama.cpp's q/k row order in GGUF adapters (--base-config)")
struct LlamaAdapterOrderTests {
  @Test(
    "PEFT -> GGUF with --base-config permutes q/k lora_b rows as llama.cpp; reading it back with --base-config restores them"
  )
  func rowOrder() throws {
    let folder = Fixtures.scratch("qk")
    let config = Fixtures.path("adapters/base/config.json")
    let client = Fixtures.path("adapters/client_a")
    #expect(try CLI.run(["convert", client, folder + "/a.gguf", "--base-config", config]).status == 0)
    let peft = try Checkpoint.open(client)
    let gguf = try Checkpoint.open(folder + "/a.gguf")
    // head_dim 16 for q: llama.cpp row 1 is Hugging Face row 8 (rank 8 columns per row).
    let b = try #require(peft.tensor(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")).floats()
    let permuted = try #require(gguf.tensor(named: "blk.0.attn_q.weight.lora_b")).floats()
    #expect(Array(permuted[8..<16]) == Array(b[64..<72]))
    let v = try #require(gguf.tensor(named: "blk.0.attn_v.weight.lora_b")).floats()
    #expect(
      v == (try #require(peft.tensor(named: "base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")).floats())
    )

    // The file records its order and head counts: it reads back as the same adapter with or
    // without --base-config.
    #expect(
      gguf.gguf?["fedlora.qk_row_order"] == .string("llama.cpp") && gguf.gguf?["fedlora.head_count_kv"] == .u32(2))
    for extra in [["--base-config", config], []] {
      let same = try JSON.parse(
        try CLI.run(["inspect", client, "--against", folder + "/a.gguf", "--json"] + extra).stdout, path: "stdout")
      #expect((same["model"]?["against"]?.doubleValue ?? 1) < 1e-6, "\(extra)")
    }
    // Another tool's llama GGUF LoRA: refused until the head counts are known, from --base-config,
    // --base, or a PEFT client's base_model_name_or_path folder.
    let foreign = Fixtures.path("adapters/gguf/client_a.gguf")
    let refused = try CLI.run(["inspect", foreign, "--json"])
    #expect(
      refused.status == 1 && refused.stdout.contains("unknown-row-order")
        && refused.stderr.contains("give --base-config"), "\(refused.stderr)")
    #expect(try CLI.run(["convert", foreign, folder + "/back"]).status == 1)
    #expect(try CLI.run(["merge", foreign, "-o", folder + "/m"]).status == 1)
    #expect(try CLI.run(["inspect", foreign, "--base-config", config]).status == 0)
    #expect(
      try CLI.run([
        "merge", foreign, "--method", "exact", "--base", Fixtures.path("adapters/base"), "-o",
        folder + "/m.safetensors",
      ]).status == 0)
    let base = try JSON.parse(MappedFile.contents(of: client + "/adapter_config.json"), path: "config")[
      "base_model_name_or_path"]?.stringValue
    #expect(base == "fixtures/adapters/base")  // relative to the repository root, where PEFT wrote it
    let viaClient = try CLI.run(["inspect", foreign, client, "--json"], directory: Fixtures.root)
    #expect(viaClient.status == 0, "\(viaClient.stderr)")
    // Converted back to PEFT with the order known: the same products as the original.
    #expect(try CLI.run(["convert", foreign, folder + "/back", "--base-config", config, "--quiet"]).status == 0)
    let back = try JSON.parse(
      try CLI.run(["inspect", client, "--against", folder + "/back", "--json"]).stdout, path: "stdout")
    #expect((back["model"]?["against"]?.doubleValue ?? 1) < 1e-6)
  }
}
