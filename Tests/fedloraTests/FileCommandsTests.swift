import Checkpoints
import TestSupport
import Testing

@Suite("CLI: inspect, verify and convert on files")
struct FileCommandsTests {
  @Test("inspect --json lists the header facts and tensors; long arrays are shortened")
  func inspectJSON() throws {
    let result = try CLI.run(["inspect", Fixtures.path("gguf/all_types.gguf"), "--tensors", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let json = try JSON.parse(result.stdout, path: "stdout")
    #expect(json["schema"]?.stringValue == "fedlora.inspect.file/1")
    let file = try #require(json["files"]?.arrayValue?.first)
    #expect(file["format"]?.stringValue == "gguf")
    #expect(file["version"]?.intValue == 3)
    let expected = try Fixtures.json("gguf/all_types.json")
    #expect(file["tensor_count"]?.intValue == expected["tensors"]?.objectValue?.count)
    #expect(file["tensors"]?.arrayValue?.count == file["tensor_count"]?.intValue)
    let long = file["metadata"]?.objectValue?.first { $0.value["value"]?["count"] != nil }
    #expect(long != nil, "a long array is shortened to a count and its first elements")
  }

  @Test("inspect --filter keeps matching tensors; the text output names the format")
  func inspectText() throws {
    let result = try CLI.run(["inspect", Fixtures.path("sharded"), "--tensors", "--filter", "q_proj"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("safetensors, 3 shards"))
    let rows = result.stdout.split(separator: "\n").filter { $0.contains("model.layers") }
    #expect(!rows.isEmpty && rows.allSatisfy { $0.contains("q_proj") })
  }

  @Test("verify: 0 for valid files, 1 with one line per problem for invalid ones")
  func verify() throws {
    let good = try CLI.run(["verify", Fixtures.path("gguf/all_types.gguf"), Fixtures.path("sharded")])
    #expect(good.status == 0)
    #expect(good.stdout.split(separator: "\n").count == 2)
    let bad = try CLI.run([
      "verify", Fixtures.path("malformed/st_offset_overlap.safetensors"), Fixtures.path("gguf/v2.gguf"), "--json",
    ])
    #expect(bad.status == 1)
    let json = try JSON.parse(bad.stdout, path: "stdout")
    #expect(json["valid"] == .bool(false))
    #expect(json["files"]?.arrayValue?.first?["problems"]?.arrayValue?.first?["code"]?.stringValue == "offset-overlap")
    #expect(json["files"]?.arrayValue?.last?["valid"] == .bool(true))
  }

  @Test("verify --data finds NaN/Inf and gives each tensor a CRC-32")
  func verifyData() throws {
    let result = try CLI.run(["verify", "--data", "--json", Fixtures.path("safetensors/dtypes.safetensors")])
    #expect(result.status == 1, "the dtypes fixture holds NaN and infinities on purpose")
    let json = try JSON.parse(result.stdout, path: "stdout")
    let file = try #require(json["files"]?.arrayValue?.first)
    #expect(file["problems"]?.arrayValue?.allSatisfy { $0["code"]?.stringValue == "non-finite" } == true)
    let tensors = try #require(file["tensors"]?.arrayValue)
    #expect(tensors.allSatisfy { $0["crc32"]?.stringValue?.count == 8 })
    let clean = try CLI.run(["verify", "--data", Fixtures.path("sharded")])
    #expect(clean.status == 0)
  }

  @Test("convert: safetensors -> GGUF -> safetensors keeps every byte")
  func convertRoundTrip() throws {
    let folder = Fixtures.scratch("convert")
    let source = Fixtures.path("sharded")
    #expect(try CLI.run(["convert", source, folder + "/m.gguf"]).status == 0)
    #expect(try CLI.run(["convert", folder + "/m.gguf", folder + "/back.safetensors"]).status == 0)
    let original = try Checkpoint.open(source)
    let back = try Checkpoint.open(folder + "/back.safetensors")
    #expect(back.tensors.count == original.tensors.count)
    for tensor in original.tensors {
      let copy = try #require(back.tensor(named: tensor.name))
      #expect(copy.dtype == tensor.dtype && copy.shape == tensor.shape)
      #expect(try copy.copyBytes() == tensor.copyBytes())
    }
  }

  @Test("convert --shard-size writes a sharded folder that reads back")
  func convertSharded() throws {
    let folder = Fixtures.scratch("shard")
    let result = try CLI.run(["convert", Fixtures.path("sharded"), folder + "/out", "--shard-size", "2KB"])
    #expect(result.status == 0, "\(result.stderr)")
    let sharded = try Checkpoint.open(folder + "/out")
    #expect(sharded.format == .shardedSafetensors && sharded.files.count > 1)
    #expect(sharded.tensors.count == (try Checkpoint.open(Fixtures.path("sharded"))).tensors.count)
  }

  @Test("A failed convert leaves nothing behind; errors exit 1 with a JSON-free message on stderr")
  func noPartialOutput() throws {
    let folder = Fixtures.scratch("partial")
    let result = try CLI.run(["convert", Fixtures.path("safetensors/dtypes.safetensors"), folder + "/x.gguf"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("U64") || result.stderr.contains("cannot write"))
    #expect(Checkpoint.listDirectory(folder).isEmpty, "no temporary or partial file remains")
  }

  @Test("Usage errors exit 64")
  func usage() throws {
    #expect(try CLI.run(["inspect", "--no-such-flag", "x"]).status == 64)
    #expect(try CLI.run(["convert", "a", "b", "--shard-size", "lots"]).status == 64)
  }
}
