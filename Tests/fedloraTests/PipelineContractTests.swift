import Checkpoints
import Foundation
import TestSupport
import Testing

/// One contract for merge, inspect, verify and convert: every flag used or refused, one JSON
/// document, results on stdout, exit statuses 0 / 1 / 64 / 130 / 143.
@Suite("CLI: the pipeline contract of every command")
struct PipelineContractTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }
  static let base = Fixtures.path("adapters/base")

  @Test("Each refused option combination exits 64 with its reason, before anything is written")
  func refusedOptions() throws {
    let folder = Fixtures.scratch("refused")
    let (a, b) = (Self.clients[0], Self.clients[1])
    let out = folder + "/out"
    let cases: [(arguments: [String], reason: String)] = [
      (["merge", a, b, "-o", out, "--rank", "4"], "--rank sets the output rank of --method svd"),
      (["merge", a, b, "-o", out, "--no-errors"], "--no-errors: flora-na solves on the Gram blocks"),
      (["merge", a, b, "-o", out, "--method", "svd", "--no-errors"], "--no-errors: svd solves on the Gram blocks"),
      (["merge", a, b, "-o", out, "--method", "fedavg", "--rank", "4"], "--rank sets the output rank"),
      (["merge", a, b, "-o", out, "--method", "svd", "--rank", "0"], "--rank must be at least 1"),
      (["merge", a, b, "-o", out, "--method", "svd", "--rank", "-3"], "--rank must be at least 1"),
      (
        ["merge", a, b, "-o", out, "--method", "svd", "--scope", "model"], "--scope and --max-iterations tune flora-na"
      ),
      (["merge", a, b, "-o", out, "--method", "fedavg", "--max-iterations", "5"], "tune flora-na"),
      (["merge", a, b, "-o", out, "--max-iterations", "0"], "--max-iterations must be at least 1"),
      (["merge", a, b, "-o", out, "--adapter-output", folder + "/ad"], "--adapter-output is where --method fedex"),
      (["merge", a, b, "-o", out, "--shard-size", "1MB"], "--shard-size applies to a sharded merged checkpoint"),
      (
        ["merge", a, b, "-o", out + ".safetensors", "--base", Self.base, "--shard-size", "1MB"], "--shard-size applies"
      ),
      (["merge", a, b, "-o", out, "--base", Self.base, "--format", "peft"], "--format chooses an adapter's format"),
      (["merge", a, b, "-o", out + ".safetensors", "--format", "gguf"], "contradicts OUTPUT"),
      (["merge", a, b, "-o", out + ".gguf", "--format", "peft"], "contradicts OUTPUT"),
      (
        ["merge", a, b, "-o", out, "--keep-weights", "--samples", "100,300"], "--keep-weights keeps --weights as given"
      ),
      (["merge", a, b, "-o", out, "--keep-weights"], "it needs --weights"),
      (["merge", a, b, "-o", out, "--weights", "-1,1"], "negative value"),
      (["merge", a, b, "-o", out, "--weights", "0,0"], "all zeros"),
      (["merge", a, b, "-o", out, "--weights", "1,2,3"], "3 values for 2 clients"),
      (["merge", a, b, "-o", out, "--samples", "1,x"], "not a comma-separated list"),
      (["merge", a, b, "-o", out, "--weights", "1,2", "--samples", "1,2"], "not both"),
      (["merge", a, b, "-o", out, "--alpha", "-2"], "--alpha must be a positive number"),
      (["merge", a, b, "-o", out, "--alpha", "8"], "every client has one"),
      (["merge", a, b, "-o", out, "--method", "exact"], "give --base"),
      (["merge", a, b, "-o", out, "--method", "nope"], "unknown --method"),
      (
        ["merge", a, b, "-o", out, "--base-config", Fixtures.path("tokenizers/llama_bpe/config.json")],
        "--base-config gives the q/k row order"
      ),
      (["merge", a, a, "-o", out], "same input"),
      (
        ["convert", Fixtures.path("sharded"), out + ".gguf", "--shard-size", "2KB"],
        "--shard-size applies to a sharded output"
      ),
      (
        ["convert", Fixtures.path("sharded"), out + ".safetensors", "--dtype", "q8_0"],
        "--dtype q8_0 needs a .gguf output"
      ),
      (["convert", Fixtures.path("sharded"), out + ".gguf", "--keep-names"], "names are kept anyway"),
      (["convert", a, out + ".gguf", "--keep-names"], "--keep-names applies to model checkpoints"),
      (["convert", a, out, "--shard-size", "1MB"], "an adapter is one file"),
      (
        [
          "convert", Fixtures.path("sharded"), out + ".gguf", "--base-config",
          Fixtures.path("tokenizers/llama_bpe/config.json"),
        ], "is not an adapter"
      ),
      (["inspect", a, "--rank", "4"], "--rank applies to several clients"),
      (["inspect", a, "--weights", "1"], "--weights applies to several clients"),
      (["inspect", a, b, "--top", "2"], "--top applies to one adapter"),
      (["inspect", a, "--tensors", "--sort", "norm_A"], "--sort applies to adapter tables"),
      (["inspect", Self.base, "--sort", "norm_A"], "holds no adapter"),
      (["inspect", a, b, "--weights", "1,2,3"], "3 values for 2 clients"),
      (["inspect", a, "--json", "--csv"], "choose one of"),
      (["inspect", Self.base, "--filter", "q_proj"], "--filter selects"),
      (["convert", a, out + ".gguf", "--skip-unsupported"], "--skip-unsupported leaves out model tensors"),
      (["verify", Fixtures.path("sharded"), "--checksums"], "--checksums prints"),
    ]
    for (arguments, reason) in cases {
      let result = try CLI.run(arguments)
      #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
      #expect(result.stderr.contains(reason), "\(arguments): \(result.stderr)")
      let json = try CLI.run(arguments + ["--json"])
      let document = try? JSON.parse(json.stdout, path: "stdout")
      #expect(
        json.status == 64 && document?["ok"]?.boolValue == false
          && document?["error"]?["message"]?.stringValue?.contains(reason) == true,
        "\(arguments): \(json.stdout)")
    }
    #expect(Checkpoint.listDirectory(folder).isEmpty)
  }

  /// Runs `arguments` with --json; checks the contract's common part and returns the document.
  func document(_ arguments: [String], status: Int32 = 0, schema: String) throws -> JSON? {
    let result = try CLI.run(arguments + ["--json"])
    #expect(result.status == status, "\(arguments): \(result.stderr)")
    let json = try? JSON.parse(result.stdout, path: "stdout")  // exactly one document: anything else fails to parse
    #expect(json?["schema"]?.stringValue == schema, "\(arguments): \(result.stdout)")
    #expect(json?["ok"]?.boolValue == (status == 0) && json?["warnings"]?.arrayValue != nil, "\(arguments)")
    if status == 0 {
      #expect(result.stderr.isEmpty, "\(arguments): stderr \(result.stderr)")
    } else {
      #expect(
        json?["error"]?["code"]?.stringValue != nil && json?["error"]?["message"]?.stringValue != nil, "\(arguments)")
    }
    return json
  }

  @Test(
    "--json: one document with schema, ok and warnings from every command, success and failure; stderr empty on success"
  )
  func jsonContract() throws {
    let folder = Fixtures.scratch("contract")
    let (a, b) = (Self.clients[0], Self.clients[1])
    let merged = try document(["merge", a, b, "-o", folder + "/m", "--method", "fedavg"], schema: "fedlora.merge/1")
    #expect(merged?["layers"]?.arrayValue?.count == 14)
    // Warnings travel in the document, not on stderr (clients of different ranks).
    let warned = try document(
      ["merge", a, Fixtures.path("adapters/client_r4"), "-o", folder + "/w.safetensors"], schema: "fedlora.merge/1")
    #expect(warned?["warnings"]?.arrayValue?.isEmpty == false)
    let converted = try document(
      ["convert", Fixtures.path("sharded"), folder + "/c.gguf", "--dtype", "f16"], schema: "fedlora.convert/1")
    #expect(
      converted?["tensors"]?.intValue == 12 && converted?["files"]?.arrayValue?.count == 1
        && converted?["dtypes"]?["F16"] != nil)
    #expect(
      try document(["convert", a, folder + "/a.gguf"], schema: "fedlora.convert/1")?["format"]?.stringValue
        == "gguf-lora")
    #expect(
      try document(["verify", Fixtures.path("sharded"), "--data"], schema: "fedlora.verify/1")?["valid"]?.boolValue
        == true)
    #expect(try document(["inspect", a], schema: "fedlora.inspect.adapter/1")?["layers"] != nil)
    #expect(try document(["inspect", a, b], schema: "fedlora.inspect.clients/1")?["model"] != nil)
    #expect(try document(["inspect", Self.base], schema: "fedlora.inspect.file/1")?["files"] != nil)
    // Failures: bad input (1), a failed check (1), usage (64).
    #expect(
      try document(
        ["merge", Fixtures.path("adapters/client_dora"), "-o", folder + "/x"], status: 1, schema: "fedlora.merge/1")?[
          "error"]?["code"]?.stringValue == "dora-not-mergeable")
    let bad = Fixtures.path("malformed/st_offset_overlap.safetensors")
    #expect(
      try document(["verify", bad], status: 1, schema: "fedlora.verify/1")?["error"]?["code"]?.stringValue
        == "verify-failed")
    #expect(
      try document(["convert", bad, folder + "/y.gguf"], status: 1, schema: "fedlora.convert/1")?["error"]?["code"]?
        .stringValue == "offset-overlap")
    #expect(try document(["inspect", bad], status: 1, schema: "fedlora.inspect/1") != nil)  // before a view is chosen
    #expect(
      try document(["merge", a, "-o", folder + "/z", "--rank", "2"], status: 64, schema: "fedlora.merge/1")?["error"]?[
        "code"]?.stringValue == "usage")
    #expect(try document(["verify"], status: 64, schema: "fedlora.verify/1") != nil)
    #expect(!Checkpoint.listDirectory(folder).contains { $0 == "x" || $0 == "y.gguf" || $0 == "z" })
  }

  @Test(
    "BLAS/LAPACK are loaded on first use: without them a merge with errors ends with 1 and says why, leaving nothing; --no-errors and header-only inspect need none"
  )
  func blasOnFirstUse() throws {
    let folder = Fixtures.scratch("no-blas")
    let missing = ["FEDLORA_OPENBLAS": folder + "/libopenblas-missing.so"]
    let failed = try CLI.run(
      ["merge"] + Self.clients + ["--method", "fedavg", "-o", folder + "/out"], environment: missing)
    #expect(
      failed.status == 1 && failed.stderr.contains("cannot load BLAS/LAPACK")
        && failed.stderr.contains("libopenblas-missing.so"))
    #expect(Checkpoint.listDirectory(folder).isEmpty, "no output, no temporary")
    // A typed error, not an exit: under --json the failure is the document, as any other.
    let document = try CLI.run(
      ["merge"] + Self.clients + ["--method", "flora-na", "-o", folder + "/na", "--json"], environment: missing)
    let code = try JSON.parse(document.stdout, path: "stdout")["error"]?["code"]?.stringValue
    #expect(document.status == 1 && code == "blas-unavailable")
    #expect(Checkpoint.listDirectory(folder).isEmpty, "no output, no temporary")
    let summed = try CLI.run(
      ["merge"] + Self.clients + ["--method", "fedavg", "--no-errors", "-o", folder + "/sum", "--quiet"],
      environment: missing)
    #expect(summed.status == 0, "\(summed.stderr)")
    #expect(try CLI.run(["inspect", "--tensors", Self.clients[0]], environment: missing).status == 0)
    #expect(try CLI.run(["--version"], environment: missing).status == 0)
  }

  @Test(
    "--version prints the version alone; --version --verbose also names the BLAS/LAPACK loaded, or exits 1 saying what is missing"
  )
  func versionVerbose() throws {
    let plain = try CLI.run(["--version"])
    #expect(plain.status == 0 && plain.stdout.split(separator: "\n").count == 1 && !plain.stdout.contains("blas"))
    for arguments in [["--version", "--verbose"], ["--verbose", "--version"]] {
      let verbose = try CLI.run(arguments)
      let keys = verbose.stdout.split(separator: "\n").map { $0.prefix { $0 != ":" } }
      #expect(
        verbose.status == 0 && keys == ["version", "blas", "lapacke", "openblas", "kernels"], "\(verbose.stdout)")
      #expect(verbose.stdout.hasPrefix("version: " + plain.stdout))
    }
    let missing = try CLI.run(
      ["--version", "--verbose"], environment: ["FEDLORA_OPENBLAS": "/nonexistent/libopenblas.so"])
    #expect(missing.status == 1 && missing.stderr.contains("/nonexistent/libopenblas.so"))
    // The layout of the wheel and the tarball: bin/fedlora beside lib/fedlora/libscipy_openblas.so,
    // here a file that is no library, which a run names rather than falling back to the system's.
    let folder = Fixtures.scratch("bundled")
    try FileManager.default.createDirectory(atPath: folder + "/bin", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: folder + "/lib/fedlora", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: CLI.executable, toPath: folder + "/bin/fedlora")
    #expect(
      FileManager.default.createFile(
        atPath: folder + "/lib/fedlora/libscipy_openblas.so", contents: Data("no ELF".utf8)))
    let broken = try CLI.run(["--version", "--verbose"], program: folder + "/bin/fedlora")
    #expect(
      broken.status == 1 && broken.stderr.contains("cannot load the OpenBLAS bundled with fedlora")
        && broken.stderr.contains("FEDLORA_OPENBLAS"), "\(broken.stderr)")
    let merge = try CLI.run(
      ["merge"] + Self.clients + ["--method", "fedavg", "-o", folder + "/out", "--json"],
      program: folder + "/bin/fedlora")
    #expect(merge.status == 1 && merge.stderr.contains("bundled with fedlora"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/out"))
  }

  @Test("Results go to stdout, --quiet silences them; warnings stay on stderr")
  func streams() throws {
    let folder = Fixtures.scratch("streams")
    let (a, r4) = (Self.clients[0], Fixtures.path("adapters/client_r4"))
    let loud = try CLI.run(["merge", a, r4, "-o", folder + "/m"])
    #expect(
      loud.status == 0 && loud.stdout.hasPrefix("wrote \(folder)/m (flora-na, 14 layers)")
        && loud.stdout.contains("model: relative error"))
    #expect(loud.stderr.contains("warning: clients have different ranks") && !loud.stderr.contains("model:"))
    let quiet = try CLI.run(["merge", a, r4, "-o", folder + "/m", "--quiet"])
    #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.contains("warning:"))
    for arguments in [["verify", Fixtures.path("sharded")], ["inspect", a], ["convert", a, folder + "/a.gguf"]] {
      let run = try CLI.run(arguments + ["--quiet"])
      #expect(run.status == 0 && run.stdout.isEmpty && run.stderr.isEmpty, "\(arguments): \(run.stdout) \(run.stderr)")
      #expect(try !CLI.run(arguments).stdout.isEmpty, "\(arguments)")
    }
  }

  @Test("svd --rank beyond what a layer holds is clamped per layer, with a note; floor <= error in every row")
  func rankClamp() throws {
    let folder = Fixtures.scratch("clamp")
    let result = try CLI.run(
      ["merge"] + Self.clients + ["--method", "svd", "--rank", "100000", "-o", folder + "/svd.safetensors"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("note: 14 layers have rank below --rank 100000"), "\(result.stdout)")
    let json = try CLI.run(
      ["merge"] + Self.clients + ["--method", "svd", "--rank", "100000", "-o", folder + "/svd.safetensors", "--json"])
    let layers = try JSON.parse(json.stdout, path: "stdout")["layers"]?.arrayValue ?? []
    #expect(layers.count == 14)
    for layer in layers {
      let shape = layer["shape"]?.arrayValue?.compactMap(\.intValue) ?? []
      let rank = layer["rank"]?.intValue ?? 0
      #expect(rank <= min(24, shape.min() ?? 0) && rank > 8, "\(layer)")
      #expect(layer["rank_limit"]?.stringValue != nil)
      #expect((layer["floor"]?.doubleValue ?? 1) <= (layer["relative_error"]?.doubleValue ?? 0) + 1e-12, "\(layer)")
    }
    let written = try Checkpoint.open(folder + "/svd.safetensors")
    let a = try #require(written.tensor(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"))
    #expect(a.shape[0] <= 24)
    // Identical clients: T has the rank of one client, so the components beyond it would be zeros.
    let twins = try CLI.run([
      "merge", Self.clients[0], Fixtures.path("adapters/client_r4"), "--method", "svd", "--rank", "64", "-o",
      folder + "/t", "--json",
    ])
    #expect(twins.status == 0)
  }

  @Test(
    "convert ADAPTER x.safetensors writes one file that reads back as the same adapter; no extension gives a PEFT folder"
  )
  func adapterToSafetensors() throws {
    let folder = Fixtures.scratch("adapter-file")
    for client in [Self.clients[0], Fixtures.path("adapters/client_pattern")] {
      #expect(try CLI.run(["convert", client, folder + "/one.safetensors", "--quiet"]).status == 0)
      #expect(Checkpoint.isFile(folder + "/one.safetensors"))
      let original = try CLI.run(["inspect", client, "--json"])
      let back = try CLI.run(["inspect", folder + "/one.safetensors", "--json"])
      let (x, y) = (
        try JSON.parse(original.stdout, path: "a")["layers"], try JSON.parse(back.stdout, path: "b")["layers"]
      )
      #expect(x?.arrayValue?.map { $0["norm_sBA"] } == y?.arrayValue?.map { $0["norm_sBA"] }, "\(client)")
    }
    #expect(try CLI.run(["convert", Self.clients[0], folder + "/peft", "--quiet"]).status == 0)
    #expect(Checkpoint.listDirectory(folder + "/peft") == ["adapter_config.json", "adapter_model.safetensors"])
  }
}
