import TestSupport
import Testing

@testable import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

@Suite("PyTorch zip checkpoints: the pickle interpreted, never run")
struct PyTorchTests {
  static func path(_ name: String) -> String { Fixtures.path("pytorch/" + name) }

  static func refusal(_ path: String) -> CheckpointError? {
    do {
      _ = try Checkpoint.open(path)
      return nil
    } catch {
      return error
    }
  }

  @Test(
    "PEFT's .bin (save_pretrained(safe_serialization=False)) holds its safetensors twin's tensors, byte for byte",
    arguments: ["client_a", "client_bf16"])
  func twins(_ name: String) throws {
    let pickled = try Checkpoint.open(Self.path(name))
    let reference = try Checkpoint.open(Fixtures.path("adapters/" + name))
    #expect(pickled.format == .pytorch)
    #expect(pickled.tensors.count == reference.tensors.count)
    for tensor in reference.tensors {
      let twin = try #require(pickled.tensor(named: tensor.name), "\(tensor.name)")
      #expect(twin.dtype == tensor.dtype && twin.shape == tensor.shape)
      #expect(try twin.copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }
  }

  @Test("A sharded .bin model (pytorch_model.bin.index.json) holds its safetensors twin's tensors")
  func sharded() throws {
    let pickled = try Checkpoint.open(Self.path("sharded_base"))
    let reference = try Checkpoint.open(Fixtures.path("adapters/base"))
    #expect(pickled.format == .shardedPytorch && pickled.files.count == 15)
    #expect(Set(pickled.tensors.map(\.name)) == Set(reference.tensors.map(\.name)))
    for tensor in reference.tensors {
      #expect(try pickled.tensor(named: tensor.name)?.copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }
  }

  @Test("Tensors sharing one storage are views at their offsets")
  func views() throws {
    let file = try Checkpoint.open(Self.path("views.bin"))
    #expect(try file.tensor(named: "whole")?.floats() == (0..<24).map(Float.init))
    #expect(try file.tensor(named: "rows")?.floats() == (8..<20).map(Float.init))
    #expect(file.tensor(named: "rows")?.shape == [3, 4])
    #expect(try file.tensor(named: "row")?.floats() == (16..<20).map(Float.init))
    #expect(Set(file.tensors.map { $0.file.path }).count == 1)
  }

  @Test(
    "Malicious pickles are refused naming the global, and nothing in them runs",
    arguments: [
      ("evil_os_system.bin", "posix.system"), ("evil_posix.bin", "posix.system"), ("evil_eval.bin", "__builtin__.eval"),
      ("evil_subprocess.bin", "commands.Popen"),
    ])
  func malicious(_ name: String, _ global: String) throws {
    let marker = "/tmp/fedlora-pickle-ran"
    unlink(marker)
    guard case let .unsafePickle(_, globals)? = Self.refusal(Self.path(name)) else {
      Issue.record("\(name) was not refused as an unsafe pickle")
      return
    }
    #expect(globals.map { "\($0.module).\($0.name)" } == [global])
    #expect(globals[0].offset > 0)
    #expect(access(marker, F_OK) != 0, "the payload ran")
    // The scan for auditors lists every global, allowed or not.
    let scan = try PyTorchFile.globals(of: MappedFile(path: Self.path(name)))
    #expect(scan.unsafe == globals && scan.all.contains { $0.name == "_rebuild_tensor_v2" })
  }

  @Test("A strided view (a transpose) is read as .contiguous() gives it; a deflated archive is inflated")
  func stridedAndDeflated() throws {
    // torch.arange(12).reshape(3, 4).t(): rows of the transpose.
    #expect(
      try Checkpoint.open(Self.path("transposed.bin")).tensor(named: "t")?.floats() == [
        0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11,
      ])
    let deflated = try Checkpoint.open(Self.path("deflated.bin"))
    let stored = try Checkpoint.open(Self.path("client_a"))
    #expect(deflated.tensors.count == stored.tensors.count)
    for tensor in stored.tensors {
      #expect(try deflated.tensor(named: tensor.name)?.copyBytes() == tensor.copyBytes(), "\(tensor.name)")
    }
  }

  @Test("Refused with their reason: the pre-1.6 format, a bad CRC, a truncated archive")
  func refused() {
    #expect(Self.refusal(Self.path("legacy.bin"))?.description.contains("before 1.6") == true)
    #expect(Self.refusal(Self.path("bad_crc.bin"))?.description.contains("CRC-32") == true)
    #expect(Self.refusal(Self.path("truncated.bin"))?.code == "bad-archive")
  }

  // MARK: Crafted archives and pickles

  /// A zip of stored entries (what torch.save writes), optionally with its fields tampered.
  static func zip(_ entries: [(name: String, data: [UInt8])], corrupt: ((inout [UInt8], [Int]) -> Void)? = nil)
    -> [UInt8]
  {
    func le(_ value: Int, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    var out: [UInt8] = []
    var central: [UInt8] = []
    var locals: [Int] = []
    for (name, data) in entries {
      let crc = Int(data.withUnsafeBytes { crc32($0) })
      let nameBytes = Array(name.utf8)
      locals.append(out.count)
      let common =
        le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) + le(data.count, 4) + le(data.count, 4)
        + le(nameBytes.count, 2) + le(0, 2)
      central +=
        le(0x0201_4B50, 4) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(out.count, 4)
        + nameBytes
      out += le(0x0403_4B50, 4) + common + nameBytes + data
    }
    let directory = out.count
    out += central
    out +=
      le(0x0605_4B50, 4) + le(0, 2) + le(0, 2) + le(entries.count, 2) + le(entries.count, 2) + le(central.count, 4)
      + le(directory, 4) + le(0, 2)
    corrupt?(&out, locals)
    return out
  }

  static func write(_ bytes: [UInt8]) -> String {
    let folder = Fixtures.scratch("pytorch-crafted")
    let path = folder + "/crafted.bin"
    Fixtures.write(bytes, to: path)
    return path
  }

  /// `{"w": _rebuild_tensor_v2(storage, 0, shape, strides, False, None)}` over `count` floats.
  static func archive(
    shape: [Int], count: Int, strides given: [Int]? = nil, storageBytes: Int? = nil, extraPickle: [UInt8] = []
  ) -> [UInt8] {
    func str(_ s: String) -> [UInt8] {
      [0x58] + (0..<4).map { UInt8(truncatingIfNeeded: s.utf8.count >> (8 * $0)) } + Array(s.utf8)
    }
    func int(_ v: Int) -> [UInt8] { [0x4A] + (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    var strides: [Int] = []
    var running = 1
    for size in shape.reversed() {
      strides.insert(running, at: 0)
      running *= size
    }
    strides = given ?? strides
    var p: [UInt8] = [0x80, 0x02, 0x7D] + str("w")
    p += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8)
    p +=
      [0x28, 0x28] + str("storage") + Array("ctorch\nFloatStorage\n".utf8) + str("0") + str("cpu") + int(count) + [
        0x74, 0x51,
      ]
    p += int(0) + [0x28] + shape.flatMap(int) + [0x74, 0x28] + strides.flatMap(int) + [0x74, 0x89, 0x4E, 0x74, 0x52]
    p += extraPickle + [0x73, 0x2E]
    let storage = (0..<(storageBytes ?? 4 * count)).map { UInt8(truncatingIfNeeded: $0) }
    return zip([("archive/data.pkl", p), ("archive/byteorder", Array("little".utf8)), ("archive/data/0", storage)])
  }

  @Test("A crafted archive of the layout torch.save writes reads back")
  func craftedReads() throws {
    let file = try Checkpoint.open(Self.write(Self.archive(shape: [2, 3], count: 6)))
    #expect(file.tensors.map(\.shape) == [[2, 3]])
    #expect(file.tensors[0].byteCount == 24)
  }

  @Test("Malformed archives and pickles: each a clear error, nothing allocated from what they claim")
  func malformed() {
    func code(_ bytes: [UInt8]) -> String? { Self.refusal(Self.write(bytes))?.code }
    // A tensor larger than its storage, and one claiming 2^40 elements.
    #expect(code(Self.archive(shape: [4, 4], count: 6)) == "data-truncated")
    #expect(code(Self.archive(shape: [1 << 20, 1 << 20], count: 6)) == "data-truncated")
    // A broadcast view (stride 0) of 10^6 elements over 6: refused rather than expanded.
    #expect(code(Self.archive(shape: [1000, 1000], count: 6, strides: [0, 0])) == "bad-entry")
    // A deflated entry claiming 2^31 bytes from one (a zip bomb), refused before allocating.
    #expect(
      Self.refusal(
        Self.write(
          Self.zip([("a/data.pkl", [0x2E])]) { bytes, _ in
            let eocd = bytes.count - 22
            let central = Int(bytes[eocd + 16]) | Int(bytes[eocd + 17]) << 8
            bytes[central + 10] = 8
            bytes[central + 27] = 0x80
          }))?.description.contains("zip bomb") == true)
    // A central directory claiming more entries than it can hold.
    #expect(code(Self.zip([("a/data.pkl", [0x2E])]) { bytes, _ in bytes[bytes.count - 12] = 0xFF }) == "bad-archive")
    // A local header offset pointing past the file.
    #expect(
      code(
        Self.zip([("a/data.pkl", [0x80, 0x02, 0x7D, 0x2E])]) { bytes, _ in
          let eocd = bytes.count - 22
          let central = Int(bytes[eocd + 16]) | Int(bytes[eocd + 17]) << 8
          bytes[central + 42] = 0xF0
          bytes[central + 45] = 0x7F
        }) == "bad-archive")
    // Overlapping entries: the second entry's header moved onto the first one's bytes.
    #expect(
      code(
        Self.zip([("a/data.pkl", [UInt8](repeating: 0x2E, count: 64)), ("a/data/0", [1, 2, 3, 4])]) { bytes, locals in
          let eocd = bytes.count - 22
          let central = Int(bytes[eocd + 16]) | Int(bytes[eocd + 17]) << 8
          let second = central + 46 + "a/data.pkl".utf8.count
          bytes[second + 42] = UInt8(locals[0])
        }) == "bad-archive")
    // Pickles: an unknown opcode, a memo read before it is written, MARKs nested past the limit,
    // a string longer than the pickle, a stack underflow.
    #expect(code(Self.zip([("a/data.pkl", [0x80, 0x02, 0xFF])])) == "bad-pickle")
    #expect(code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x68, 0x07, 0x2E])])) == "bad-pickle")
    #expect(
      code(Self.zip([("a/data.pkl", [0x80, 0x02] + [UInt8](repeating: 0x28, count: 100_000) + [0x2E])])) == "bad-pickle"
    )
    // A million nested one-tuples (tearing such a value down would recurse a million frames),
    // and a list filled after the memo shared it (which would hide how deep it nests).
    #expect(
      code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 1_000_000) + [0x2E])]))
        == "bad-pickle")
    #expect(
      code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x5D, 0x71, 0x00, 0x68, 0x00, 0x4E, 0x61, 0x2E])])) == "bad-pickle")
    #expect(code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E])])) == "bad-pickle")
    #expect(code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x2E])])) == "bad-pickle")
    // No data.pkl at all, and a top level that is not a state dict.
    #expect(code(Self.zip([("a/other", [1])])) == "bad-archive")
    #expect(code(Self.zip([("a/data.pkl", [0x80, 0x02, 0x4E, 0x2E])])) == "unrecognized-format")
  }
}
