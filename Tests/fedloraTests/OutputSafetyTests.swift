import Checkpoints
import Foundation
import TestSupport
import Testing

/// Nothing a user did not ask for is ever lost: foreign files stay, inputs are never outputs,
/// temporaries never survive a run, whatever ends it.
@Suite("CLI: outputs never touch what fedlora did not write")
struct OutputSafetyTests {
  static let clients = ["client_a", "client_b"].map { Fixtures.path("adapters/" + $0) }

  /// Every name in `folder`, recursively (temporaries are hidden files: they are listed).
  static func tree(_ folder: String) -> [String] {
    (FileManager.default.subpaths(atPath: folder) ?? []).sorted()
  }

  static func temporaries(_ folder: String) -> [String] { tree(folder).filter { $0.contains(".fedlora-") } }

  @Test("Merging into an existing folder replaces only the adapter's files; foreign files and sub-folders stay")
  func foreignFilesSurvive() throws {
    let folder = Fixtures.scratch("foreign")
    let project = folder + "/proj"
    try FileManager.default.createDirectory(atPath: project + "/notes", withIntermediateDirectories: true)
    Fixtures.write(Array("print(1)\n".utf8), to: project + "/train.py")
    Fixtures.write(Array("n\n".utf8), to: project + "/notes/n.txt")
    for run in 0..<2 {
      let result = try CLI.run(
        ["merge"] + Self.clients + ["--method", "fedavg", "-o", project + (run == 0 ? "/" : ""), "--quiet"])
      #expect(result.status == 0, "\(result.stderr)")
    }
    #expect(
      Self.tree(folder) == [
        "proj", "proj/adapter_config.json", "proj/adapter_model.safetensors", "proj/notes", "proj/notes/n.txt",
        "proj/train.py",
      ])
    #expect(try Fixtures.read(project + "/train.py") == Array("print(1)\n".utf8))
  }

  @Test("A sharded output replaces the shards fedlora's earlier index listed, and no one else's")
  func shardedRewrite() throws {
    let folder = Fixtures.scratch("reshard")
    let out = folder + "/keepme"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    Fixtures.write(Array("mine".utf8), to: out + "/mine.txt")
    Fixtures.write(Array("theirs".utf8), to: out + "/model-00009-of-00009.safetensors")  // listed by no index of ours
    #expect(try CLI.run(["convert", Fixtures.path("sharded"), out, "--shard-size", "2KB", "--quiet"]).status == 0)
    let many = Checkpoint.listDirectory(out).filter { $0.hasSuffix("-of-00006.safetensors") }
    #expect(many.count == 6)
    #expect(
      try CLI.run(["convert", Fixtures.path("sharded"), out + "/", "--shard-size", "4KB", "--quiet"]).status == 0)
    let names = Checkpoint.listDirectory(out)
    #expect(
      names == [
        "mine.txt", "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors",
        "model-00009-of-00009.safetensors", "model.safetensors.index.json",
      ])
    #expect(try Checkpoint.open(out).tensors.count == 12)
  }

  @Test("An output that is an input, however spelled, is refused before anything is read")
  func outputIsInput() throws {
    let folder = Fixtures.scratch("same")
    let client = folder + "/ca"
    try FileManager.default.copyItem(atPath: Self.clients[0], toPath: client)
    try FileManager.default.createSymbolicLink(atPath: folder + "/link", withDestinationPath: client)
    try FileManager.default.copyItem(atPath: Fixtures.path("adapters/base"), toPath: folder + "/base")
    try FileManager.default.createDirectory(atPath: folder + "/base-out", withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      atPath: Fixtures.path("adapters/base/config.json"), toPath: folder + "/base-out/config.json")
    let before = try Fixtures.read(client + "/adapter_model.safetensors")
    let gguf = Fixtures.path("adapters/gguf/client_a.gguf")
    let cases: [(arguments: [String], directory: String?)] = [
      (["merge", client, Self.clients[1], "-o", client], nil),
      (["merge", client, Self.clients[1], "-o", client + "/"], nil),
      (["merge", "ca", Self.clients[1], "-o", "./ca"], folder),
      (["merge", client, Self.clients[1], "-o", folder + "/link"], nil),
      (["merge", client, Self.clients[1], "-o", "../" + lastPathComponent(folder) + "/ca/."], folder),
      (["merge", client, Self.clients[1], "-o", client + "/sub"], nil),
      (["merge", client, Self.clients[1], "-o", "."], client),
      (["merge", client + "/adapter_model.safetensors", Self.clients[1], "--method", "fedavg", "-o", client], nil),
      (["merge", gguf, Self.clients[1], "-o", gguf], nil),
      (["convert", client, client + "/x.gguf"], nil),
      (
        [
          "merge", Self.clients[1], client, "--method", "fedex", "--base", Fixtures.path("adapters/base"), "-o",
          folder + "/m", "--adapter-output", client,
        ], nil
      ),
      (["inspect", client, "--plot", client + "/plot.svg"], nil),
      (
        [
          "merge", client, "--method", "exact", "--base", folder + "/base", "-o", folder + "/base-out", "--base-config",
          folder + "/base-out/config.json",
        ], nil
      ),
    ]
    for (arguments, directory) in cases {
      let result = try CLI.run(arguments + ["--json"], directory: directory)
      let json = try? JSON.parse(result.stdout, path: "stdout")
      #expect(result.status == 64, "\(arguments): \(result.stderr)")
      #expect(json?["error"]?["code"]?.stringValue == "output-is-input", "\(arguments): \(result.stdout)")
    }
    #expect(try Fixtures.read(client + "/adapter_model.safetensors") == before)
    #expect(Checkpoint.listDirectory(client) == ["adapter_config.json", "adapter_model.safetensors"])
    let twice = try CLI.run(["merge", client, folder + "/link", "-o", folder + "/out"])
    #expect(twice.status == 64 && twice.stderr.contains("same input"), "\(twice.stderr)")
    // A byte-identical copy under another path is allowed, and named.
    let twin = try CLI.run(["merge", client, Self.clients[0], "-o", folder + "/twins", "--json"])
    let warnings =
      (try? JSON.parse(twin.stdout, path: "stdout"))?["warnings"]?.arrayValue?.compactMap(\.stringValue) ?? []
    #expect(
      twin.status == 0 && warnings.contains { $0.contains("holds the same bytes as \(client)") }, "\(twin.stdout)")
  }

  @Test("OUT/ is OUT; -o . and -o .. write into those folders; a file output onto a folder is a clear error")
  func spellings() throws {
    let folder = Fixtures.scratch("spell")
    try FileManager.default.createDirectory(atPath: folder + "/a/b", withIntermediateDirectories: true)
    #expect(try CLI.run(["merge"] + Self.clients + ["-o", folder + "/slash/", "--quiet"]).status == 0)
    #expect(Checkpoint.listDirectory(folder + "/slash") == ["adapter_config.json", "adapter_model.safetensors"])
    #expect(try CLI.run(["merge"] + Self.clients + ["-o", ".", "--quiet"], directory: folder + "/a").status == 0)
    #expect(try CLI.run(["merge"] + Self.clients + ["-o", "..", "--quiet"], directory: folder + "/a/b").status == 0)
    #expect(Checkpoint.listDirectory(folder + "/a") == ["adapter_config.json", "adapter_model.safetensors", "b"])
    let file = try CLI.run(["merge"] + Self.clients + ["--format", "safetensors", "-o", "."], directory: folder + "/a")
    #expect(file.status == 1 && file.stderr.contains(".: cannot write: is a folder"), "\(file.stderr)")
    // A missing folder is created, as save_pretrained does; one under a file cannot be.
    let missing = try CLI.run(["merge"] + Self.clients + ["-o", folder + "/none/x.safetensors", "--quiet"])
    #expect(missing.status == 0 && Checkpoint.listDirectory(folder + "/none") == ["x.safetensors"])
    let under = try CLI.run(["merge"] + Self.clients + ["-o", folder + "/none/x.safetensors/y.safetensors"])
    #expect(
      under.status == 1 && under.stderr.contains("y.safetensors: cannot write: its folder")
        && !under.stderr.contains(".fedlora-"), "\(under.stderr)")
    #expect(Self.temporaries(folder).isEmpty)
  }

  // ThreadSanitizer's runtime itself dies in a process under a file-size limit (`make tsan` sets
  // FEDLORA_TSAN).
  @Test(
    "A write that fails (a file size limit standing in for a full disk) names OUT and leaves the previous OUT intact",
    .disabled(if: getenv("FEDLORA_TSAN") != nil, "ThreadSanitizer cannot run under a file-size limit"))
  func failedWrite() throws {
    let folder = Fixtures.scratch("full")
    let out = folder + "/out.safetensors"
    #expect(try CLI.run(["merge"] + Self.clients + ["-o", out, "--quiet"]).status == 0)
    let before = try Fixtures.read(out)
    let limited = try CLI.run(
      ["-c", "ulimit -f 8; exec \"$0\" \"$@\"", CLI.executable, "merge"] + Self.clients + ["-o", out],
      program: "/bin/sh")
    #expect(limited.status == 1, "\(limited.stderr)")
    #expect(
      limited.stderr.contains(out + ": cannot write") && !limited.stderr.contains(".fedlora-"), "\(limited.stderr)")
    #expect(try Fixtures.read(out) == before)
    #expect(Self.temporaries(folder).isEmpty)
  }

  @Test("Temporaries of a killed run are removed by the next run to the same OUT; a live run's are not")
  func staleTemporaries() throws {
    let folder = Fixtures.scratch("stale")
    let dead = folder + "/.out.safetensors.fedlora-999999999-12"
    let live = folder + "/.out.safetensors.fedlora-\(getpid())-13"
    let other = folder + "/.other.fedlora-999999999-14"
    for path in [dead, live, other] { Fixtures.write([1, 2, 3], to: path) }
    #expect(try CLI.run(["merge"] + Self.clients + ["-o", folder + "/out.safetensors", "--quiet"]).status == 0)
    #expect(
      Checkpoint.listDirectory(folder) == [
        ".other.fedlora-999999999-14", ".out.safetensors.fedlora-\(getpid())-13", "out.safetensors",
      ])
  }
}

private func lastPathComponent(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

extension OutputSafetyTests {
  /// Inputs large enough that a debug-build merge and convert take a second or more.
  static let largeInputs: (clients: [String], checkpoint: String) = {
    let folder = Fixtures.scratch("large")
    func filled(_ name: String, _ shape: [Int], seed: UInt32) -> OutputTensor {
      OutputTensor(
        name: name, dtype: .f32, shape: shape,
        source: .compute { buffer in
          var state = seed &* 2_654_435_761 | 1
          for i in 0..<(buffer.count / 4) {
            state = state &* 1_664_525 &+ 1_013_904_223
            buffer.storeBytes(
              of: Float(Int32(bitPattern: state >> 8) - (1 << 23)) / Float(1 << 28), toByteOffset: 4 * i, as: Float.self
            )
          }
        })
    }
    var clients: [String] = []
    for client in 0..<3 {
      let path = folder + "/client_\(client)"
      var tensors: [OutputTensor] = []
      for layer in 0..<24 {
        let module = "base_model.model.model.layers.\(layer).mlp.up_proj"
        tensors.append(filled(module + ".lora_A.weight", [16, 2048], seed: UInt32(client * 100 + layer)))
        tensors.append(filled(module + ".lora_B.weight", [4096, 16], seed: UInt32(client * 100 + layer + 50)))
      }
      let config = Array(#"{"peft_type": "LORA", "r": 16, "lora_alpha": 32, "target_modules": ["up_proj"]}"#.utf8)
      try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
      try? SafeTensorsWriter.write(tensors, to: path + "/adapter_model.safetensors")
      Fixtures.write(config, to: path + "/adapter_config.json")
      clients.append(path)
    }
    let checkpoint = folder + "/model.safetensors"
    try? SafeTensorsWriter.write((0..<48).map { filled("w.\($0)", [1024, 1024], seed: UInt32($0)) }, to: checkpoint)
    return (clients, checkpoint)
  }()

  @Test(
    "SIGINT and SIGTERM at several points of a real merge and convert: 130 / 143, no temporary left, OUT as before",
    arguments: [SIGINT, SIGTERM])
  func signals(_ number: Int32) throws {
    let (clients, checkpoint) = Self.largeInputs
    let folder = Fixtures.scratch("signals")
    let runs: [[String]] = [
      ["merge"] + clients + ["--method", "flora-na", "-o", folder + "/merged"],
      ["merge"] + clients + ["--method", "svd", "-o", folder + "/merged.safetensors"],
      ["convert", checkpoint, folder + "/model.gguf", "--dtype", "bf16"],
      ["convert", checkpoint, folder + "/sharded", "--shard-size", "20MB"],
    ]
    var interrupted = 0
    for arguments in runs {
      for delay in [0.05, 0.3, 0.8] {
        let result = try CLI.run(arguments + ["--quiet"], signal: (number, delay))
        #expect(
          [0, number == SIGINT ? 130 : 143].contains(result.status), "\(arguments) after \(delay) s: \(result.stderr)")
        if result.status != 0 { interrupted += 1 }
        #expect(Self.temporaries(folder).isEmpty, "\(arguments) after \(delay) s: \(Self.tree(folder))")
      }
    }
    #expect(interrupted >= 6, "most runs were still going when the signal came")
  }
}
