import Checkpoints
import Foundation
import TestSupport
import Testing

/// The crafted inputs that once trapped or hung fedlora: each now ends with exit 0, 1 or 64,
/// quickly (a watchdog kills a run after 20 s, which fails the test instead of hanging it;
/// 60 s under ThreadSanitizer, which slows the CLI several times over on a busy CI machine).
@Suite("CLI: hostile inputs end in an answer, never a trap or a hang")
struct HostileInputTests {
  static let watchdog = (number: SIGKILL, after: getenv("FEDLORA_TSAN") == nil ? 20.0 : 60.0)

  /// Runs fedlora and checks the run ended by itself with one of the contract's statuses.
  @discardableResult
  func run(_ arguments: [String], _ expected: Set<Int32> = [0, 1, 64], directory: String? = nil) throws -> CLI.Result {
    let start = Date()
    let result = try CLI.run(arguments, directory: directory, signal: Self.watchdog)
    #expect(expected.contains(result.status), "\(arguments): exit \(result.status) \(result.stderr)")
    #expect(
      Date().timeIntervalSince(start) < Self.watchdog.after * 0.75,
      "\(arguments) took \(Date().timeIntervalSince(start)) s")
    return result
  }

  static func gguf(_ tensors: [OutputTensor], metadata: [(key: String, value: GGUFValue)], at path: String) throws {
    try GGUFWriter.write(tensors, metadata: [("general.architecture", .string("llama"))] + metadata, to: path)
  }

  /// The llama_bpe fixture model at `path` with `edit` applied to its config.json.
  static func llamaModel(at path: String, editing edit: [String: Any]) throws -> String {
    let base = Fixtures.path("tokenizers/llama_bpe")
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    for file in ["model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
      try FileManager.default.copyItem(atPath: base + "/" + file, toPath: path + "/" + file)
    }
    var config =
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + "/config.json")))
      as? [String: Any] ?? [:]
    for (key, value) in edit { config[key] = value }
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path + "/config.json"))
    return path
  }

  static func empty(_ name: String, _ shape: [Int], _ dtype: DType = .f32) -> OutputTensor {
    OutputTensor(name: name, dtype: dtype, shape: shape, values: [])
  }

  @Test("Zero-size tensors with huge other dimensions: listed, verified, converted without overflow or loops")
  func zeroSize() throws {
    let folder = Fixtures.scratch("zero")
    try Self.gguf([Self.empty("huge.zero", [1 << 62, 1 << 62, 0])], metadata: [], at: folder + "/z.gguf")
    for arguments in [
      ["inspect", folder + "/z.gguf"], ["inspect", "--tensors", folder + "/z.gguf"],
      ["verify", "--data", folder + "/z.gguf"],
      ["convert", folder + "/z.gguf", folder + "/z.safetensors", "--dtype", "f16"],
    ] {
      try run(arguments, [0])
    }
    try SafeTensorsWriter.write([Self.empty("t", [Int.max, 0, 3])], to: folder + "/s.safetensors")
    try run(["convert", folder + "/s.safetensors", folder + "/s16.safetensors", "--dtype", "f16"], [0])
    try run(["convert", folder + "/s.safetensors", folder + "/s.gguf", "--dtype", "bf16"], [0, 1])
    // A llama q/k tensor of no elements claiming 2^40 rows, and a 0-dim one: no reorder at all.
    let heads: [(key: String, value: GGUFValue)] = [
      ("llama.attention.head_count", .u32(4)), ("llama.attention.head_count_kv", .u32(2)),
    ]
    try Self.gguf(
      [
        Self.empty("blk.0.attn_q.weight", [1 << 40, 0]),
        OutputTensor(name: "blk.0.attn_k.weight", dtype: .f32, shape: [], values: [1]),
      ],
      metadata: heads, at: folder + "/llama.gguf")
    try run(["convert", folder + "/llama.gguf", folder + "/llama.safetensors"], [0])
  }

  @Test("Head counts that are not head counts (NaN, 1e30, 2^62, 0, negative) are refused by name")
  func headCounts() throws {
    let folder = Fixtures.scratch("heads")
    let q = OutputTensor(
      name: "blk.0.attn_q.weight", dtype: .f32, shape: [8, 8], values: [Float](repeating: 1, count: 64))
    for (index, value) in [GGUFValue.f32(.nan), .f32(1e30), .u64(1 << 62), .u32(0), .i32(-1)].enumerated() {
      let path = folder + "/h\(index).gguf"
      try Self.gguf([q], metadata: [("llama.attention.head_count", value)], at: path)
      let result = try run(["convert", path, folder + "/h\(index).safetensors"], [1])
      #expect(
        result.stderr.contains("llama.attention.head_count") && result.stderr.contains("not head counts"),
        "\(result.stderr)")
    }
    for (index, edit) in [
      ["num_attention_heads": 0], ["num_attention_heads": -1, "hidden_size": Int.min], ["num_key_value_heads": 3],
    ].enumerated() {
      let model = try Self.llamaModel(at: folder + "/model\(index)", editing: edit)
      let result = try run(["convert", model, folder + "/m\(index).gguf"], [1])
      #expect(result.stderr.contains("not head counts"), "\(edit): \(result.stderr)")
      try run(["inspect", Fixtures.path("adapters/gguf/client_a.gguf"), "--base-config", model + "/config.json"], [1])
    }
  }

  @Test("Config values that would size loops or traps: head_dim 1e12 with llama3 rope, special token ids beyond u32")
  func configSizes() throws {
    let folder = Fixtures.scratch("config-sizes")
    for (index, edit) in [
      ["head_dim": 1_000_000_000_000], ["head_dim": 1 << 31], ["bos_token_id": 1 << 33, "eos_token_id": -5],
    ].enumerated() {
      let model = try Self.llamaModel(at: folder + "/model\(index)", editing: edit)
      try run(["convert", model, folder + "/m\(index).gguf"])
    }
  }

  @Test("Zero-size LoRA factors claiming d = k = 2^40 are refused, not handed to LAPACK or looped over")
  func hugeFactors() throws {
    let folder = Fixtures.scratch("huge-factors")
    let module = "base_model.model.model.layers.0.self_attn.q_proj"
    try FileManager.default.createDirectory(atPath: folder + "/c", withIntermediateDirectories: true)
    try SafeTensorsWriter.write(
      [Self.empty(module + ".lora_A.weight", [0, 1 << 40]), Self.empty(module + ".lora_B.weight", [1 << 40, 0])],
      to: folder + "/c/adapter_model.safetensors")
    Fixtures.write(
      Array(#"{"peft_type": "LORA", "r": 8, "lora_alpha": 16}"#.utf8), to: folder + "/c/adapter_config.json")
    let inspect = try run(["inspect", folder + "/c"], [1])
    #expect(inspect.stderr.contains("do not form a LoRA pair"), "\(inspect.stderr)")
    for method in ["fedavg", "svd", "stack"] {
      try run(["merge", folder + "/c", "-o", folder + "/out-" + method, "--method", method], [1])
    }
  }

  @Test("A GGUF LoRA whose adapter.lora.alpha is NaN or infinite is refused by name, not merged into NaN factors")
  func nonFiniteAlpha() throws {
    let folder = Fixtures.scratch("nonfinite-alpha")
    for (name, alpha) in [("nan", Float.nan), ("inf", Float.infinity), ("negative", -2)] {
      let path = folder + "/\(name).gguf"
      try Self.gguf(
        [
          OutputTensor(name: "blk.0.attn_v.weight.lora_a", dtype: .f32, shape: [1, 2], values: [1, 2]),
          OutputTensor(name: "blk.0.attn_v.weight.lora_b", dtype: .f32, shape: [2, 1], values: [3, 4]),
        ], metadata: [("general.type", .string("adapter")), ("adapter.lora.alpha", .f32(alpha))], at: path)
      for arguments in [["inspect", path], ["merge", path, path + "-twin", "-o", folder + "/out-\(name)"]] {
        if arguments[0] == "merge" { try FileManager.default.copyItem(atPath: path, toPath: path + "-twin") }
        let result = try run(arguments, [1])
        #expect(result.stderr.contains("adapter.lora.alpha is"), "\(name): \(result.stderr)")
      }
      #expect(!FileManager.default.fileExists(atPath: folder + "/out-\(name)"))
    }
  }

  @Test("A FIFO where a file is expected is refused without blocking")
  func fifo() throws {
    let folder = Fixtures.scratch("fifo")
    #expect(mkfifo(folder + "/in.safetensors", 0o644) == 0)
    let input = try run(["inspect", folder + "/in.safetensors"], [1])
    #expect(input.stderr.contains("not a regular file"), "\(input.stderr)")
    try run(["verify", folder + "/in.safetensors"], [1])
    try FileManager.default.createDirectory(atPath: folder + "/client", withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      atPath: Fixtures.path("adapters/client_a/adapter_model.safetensors"),
      toPath: folder + "/client/adapter_model.safetensors")
    #expect(mkfifo(folder + "/client/adapter_config.json", 0o644) == 0)
    try run(["merge", folder + "/client", Fixtures.path("adapters/client_b"), "-o", folder + "/out"], [1])
  }

  @Test("Names and metadata from files reach the terminal with control characters shown; JSON keeps them exact")
  func escapes() throws {
    let folder = Fixtures.scratch("escapes")
    let evil = "w\u{1B}]0;owned\u{07}\u{1B}[2J"
    try SafeTensorsWriter.write(
      [OutputTensor(name: evil, dtype: .f32, shape: [1], values: [1])], metadata: [("note", "x\u{1B}[31my")],
      to: folder + "/e.safetensors")
    let text = try run(["inspect", "--tensors", folder + "/e.safetensors"], [0])
    #expect(!text.stdout.contains("\u{1B}") && !text.stdout.contains("\u{07}"))
    #expect(
      text.stdout.contains("w\\x1b]0;owned\\x07\\x1b[2J") && text.stdout.contains("x\\x1b[31my"), "\(text.stdout)")
    let json = try run(["inspect", "--tensors", folder + "/e.safetensors", "--json"], [0])
    let names = try JSON.parse(json.stdout, path: "stdout")["files"]?.arrayValue?.first?["tensors"]?.arrayValue?
      .compactMap { $0["name"]?.stringValue }
    #expect(names == [evil])
    let verify = try run(["verify", "--data", "--checksums", folder + "/e.safetensors"], [0])
    #expect(!verify.stdout.contains("\u{1B}"))
  }

  @Test("Symlinks are followed within a model's repository (the Hugging Face cache layout works), never out of it")
  func symlinks() throws {
    let folder = Fixtures.scratch("links")
    let fm = FileManager.default
    let source = Fixtures.path("tokenizers/llama_bpe")
    // A cache entry: snapshots/REV/* are relative links into blobs/.
    let entry = folder + "/hub/models--o--n"
    try fm.createDirectory(atPath: entry + "/blobs", withIntermediateDirectories: true)
    try fm.createDirectory(atPath: entry + "/snapshots/rev", withIntermediateDirectories: true)
    for name in try fm.contentsOfDirectory(atPath: source) {
      try fm.copyItem(atPath: source + "/" + name, toPath: entry + "/blobs/" + name + ".blob")
      try fm.createSymbolicLink(
        atPath: entry + "/snapshots/rev/" + name, withDestinationPath: "../../blobs/" + name + ".blob")
    }
    try run(["convert", entry + "/snapshots/rev", folder + "/cached.gguf"], [0])
    // A link out of the folder: refused by name, nothing written.
    let model = folder + "/model"
    try fm.copyItem(atPath: source, toPath: model)
    Fixtures.write(Array("secret {{ x }}".utf8), to: folder + "/outside.txt")
    try fm.removeItem(atPath: model + "/chat_template.jinja")
    try fm.createSymbolicLink(atPath: model + "/chat_template.jinja", withDestinationPath: folder + "/outside.txt")
    let out = try run(["convert", model, folder + "/leak.gguf"], [1])
    #expect(
      out.stderr.contains("outside the model folder") && !fm.fileExists(atPath: folder + "/leak.gguf"), "\(out.stderr)")
    // merge --base copies companions only under the same rule.
    let base = folder + "/base"
    try fm.copyItem(atPath: Fixtures.path("adapters/base"), toPath: base)
    try fm.createSymbolicLink(atPath: base + "/notes.txt", withDestinationPath: folder + "/outside.txt")
    let merged = try run(
      ["merge", Fixtures.path("adapters/client_a"), "--method", "exact", "--base", base, "-o", folder + "/merged"], [1])
    #expect(merged.stderr.contains("notes.txt") && merged.stderr.contains("not followed"), "\(merged.stderr)")
    // A shard linked to a system file: refused, and no byte of it is shown.
    let sharded = folder + "/sharded"
    try fm.copyItem(atPath: Fixtures.path("sharded"), toPath: sharded)
    let shard = try #require(try fm.contentsOfDirectory(atPath: sharded).first { $0.hasSuffix(".safetensors") })
    try fm.removeItem(atPath: sharded + "/" + shard)
    try fm.createSymbolicLink(atPath: sharded + "/" + shard, withDestinationPath: "/etc/passwd")
    let passwd = try run(["inspect", sharded], [1])
    #expect(passwd.stderr.contains("not followed") && !passwd.stderr.contains("root"), "\(passwd.stderr)")
    // And the first bytes of a non-safetensors file are not echoed as a length.
    Fixtures.write(Array("root:x:0:0:root:/root:/bin/bash\n".utf8), to: folder + "/p.safetensors")
    let plain = try run(["inspect", folder + "/p.safetensors"], [1])
    #expect(
      plain.stderr.contains("not a safetensors file") && !plain.stderr.contains("header length at offset 0 is"),
      "\(plain.stderr)")
  }
}
