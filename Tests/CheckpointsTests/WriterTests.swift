import TestSupport
import Testing

@testable import Checkpoints

@Suite("Writers: layout, round trips, atomic replacement")
struct WriterTests {
  struct Failure: Error {}

  static let values: [Float] = (0..<48).map { Float($0) * 0.5 - 7 }

  static func sample() -> [OutputTensor] {
    [
      OutputTensor(name: "b.f16", dtype: .f16, shape: [3], values: [1, 2, 3]),
      OutputTensor(name: "a.f32", dtype: .f32, shape: [6, 8], values: values),
      OutputTensor(name: "c.bf16", dtype: .bf16, shape: [2, 2], values: [1, -1, 0.5, 3]),
      OutputTensor(name: "d.f64", dtype: .f64, shape: [1], values: [2]),
    ]
  }

  @Test("safetensors: header padded to 8, each tensor aligned to its element size, values kept")
  func safetensorsLayout() throws {
    let path = Fixtures.scratch("writer") + "/x.safetensors"
    try SafeTensorsWriter.write(Self.sample(), metadata: [("note", "kept")], to: path)
    let file = try SafeTensorsFile(path: path)
    #expect(file.dataStart % 8 == 0)
    for tensor in file.tensors { #expect(tensor.offset % ((tensor.dtype.bitsPerElement ?? 8) / 8) == 0) }
    #expect(file.metadata.map(\.key) == ["format", "note"])
    let a = try #require(file.tensors.first { $0.name == "a.f32" })
    #expect(try a.floats() == Self.values)
  }

  @Test("GGUF: written file reads back with metadata, shapes and values")
  func ggufRoundTrip() throws {
    let path = Fixtures.scratch("writer") + "/x.gguf"
    let metadata: [(key: String, value: GGUFValue)] = [
      ("general.architecture", .string("llama")), ("x.list", .array(.string, [.string("a"), .string("β")])),
      ("x.f", .f64(0.25)),
    ]
    try GGUFWriter.write(Self.sample().filter { $0.dtype != .f64 }, metadata: metadata, alignment: 64, to: path)
    let gguf = try GGUFFile(path: path)
    #expect(gguf.alignment == 64 && gguf.version == 3)
    #expect(gguf["x.list"] == .array(.string, [.string("a"), .string("β")]))
    #expect(gguf.tensors.map(\.name) == ["b.f16", "a.f32", "c.bf16"], "header order is kept")
    #expect(gguf.tensors[1].shape == [6, 8])
    #expect(try gguf.tensors[1].floats() == Self.values)
  }

  @Test("A failure while writing leaves the destination as it was and no temporary file")
  func atomic() throws {
    let folder = Fixtures.scratch("atomic")
    let path = folder + "/x.safetensors"
    try SafeTensorsWriter.write(Self.sample(), to: path)
    let before = try Fixtures.read(path)
    let failing =
      Self.sample() + [OutputTensor(name: "boom", dtype: .f32, shape: [4], source: .compute { _ in throw Failure() })]
    #expect(throws: Failure.self) { try SafeTensorsWriter.write(failing, to: path) }
    #expect(try Fixtures.read(path) == before)
    #expect(throws: Failure.self) {
      try SafeTensorsWriter.writeSharded(failing, shardSize: 64, to: folder + "/sharded")
    }
    #expect(Checkpoint.listDirectory(folder) == ["x.safetensors"])
  }

  @Test(
    "Missing parent folders are created, and removed again when the output fails; a dry run records and creates nothing"
  )
  func parentFolders() throws {
    let folder = Fixtures.scratch("parents")
    let failing =
      Self.sample() + [OutputTensor(name: "boom", dtype: .f32, shape: [4], source: .compute { _ in throw Failure() })]
    #expect(throws: Failure.self) { try SafeTensorsWriter.write(failing, to: folder + "/a/b/x.safetensors") }
    #expect(throws: Failure.self) { try SafeTensorsWriter.writeSharded(failing, shardSize: 64, to: folder + "/c/d") }
    #expect(Checkpoint.listDirectory(folder).isEmpty, "created folders removed with the failed output")
    let dry = OutputTransaction(dryRun: true)
    try SafeTensorsWriter.writeSharded(Self.sample(), shardSize: 64, to: folder + "/e/f", in: dry)
    let (shards, names) = SafeTensorsWriter.shardPlan(Self.sample(), shardSize: 64)
    #expect(dry.planned.map(\.path) == (names + ["model.safetensors.index.json"]).map { folder + "/e/f/" + $0 })
    #expect(dry.planned.map { $0.tensors.map(\.name) } == shards.map { $0.map(\.name) } + [[]])
    #expect(Checkpoint.listDirectory(folder).isEmpty)
    try SafeTensorsWriter.write(Self.sample(), to: folder + "/g/h/x.safetensors")
    #expect(Checkpoint.listDirectory(folder + "/g/h") == ["x.safetensors"])
  }

  @Test("Output bytes do not depend on the order tensors finish in")
  func deterministic() throws {
    let folder = Fixtures.scratch("determinism")
    let many = (0..<64).map { i in
      OutputTensor(name: "t\(i)", dtype: .bf16, shape: [i + 1, 7], values: (0..<((i + 1) * 7)).map { Float($0 ^ i) })
    }
    try SafeTensorsWriter.write(many, to: folder + "/a.safetensors")
    try SafeTensorsWriter.write(many.reversed(), to: folder + "/b.safetensors")
    #expect(try Fixtures.read(folder + "/a.safetensors") == Fixtures.read(folder + "/b.safetensors"))
  }

  @Test("Row-streamed outputs over several slices: equal to converting the tensor whole, in any row order")
  func rowStreaming() throws {
    let folder = Fixtures.scratch("rows")
    let (rows, width) = (8200, 1024)  // 16.8 MB of BF16 output: two slices of the writer
    let values = (0..<(rows * width)).map { Float($0 % 9973) * 0.00123 - 6 }
    try SafeTensorsWriter.write(
      [OutputTensor(name: "w", dtype: .f32, shape: [rows, width], values: values)], to: folder + "/in.safetensors")
    let input = try #require(try Checkpoint.open(folder + "/in.safetensors").tensor(named: "w"))
    let converted = CheckpointConversion.convert(input, to: .bf16, name: "w", shape: [rows, width])
    guard case .rows = converted.source else {
      Issue.record("a 2-D conversion should stream rows")
      return
    }
    // Reversed rows through rowFill, as the llama q/k reorder reads them.
    let reversed = OutputTensor(
      name: "r", dtype: .bf16, shape: [rows, width],
      source: .rows {
        let source = try converted.rowFill()
        let rowBytes = converted.rowBytes
        return { range, buffer in
          for (i, row) in range.enumerated() {
            try source(
              (rows - 1 - row)..<(rows - row),
              UnsafeMutableRawBufferPointer(rebasing: buffer[(i * rowBytes)..<((i + 1) * rowBytes)]))
          }
        }
      })
    try SafeTensorsWriter.write([converted, reversed], to: folder + "/out.safetensors")
    let out = try Checkpoint.open(folder + "/out.safetensors")
    var whole = [UInt8](repeating: 0, count: rows * width * 2)
    whole.withUnsafeMutableBytes { FloatConversion.narrow(values, to: .bf16, into: $0) }
    #expect(try #require(out.tensor(named: "w")).copyBytes() == whole)
    let rowBytes = width * 2
    let back = try #require(out.tensor(named: "r")).copyBytes()
    #expect(
      (0..<rows).allSatisfy { row in
        back[(row * rowBytes)..<((row + 1) * rowBytes)]
          == whole[((rows - 1 - row) * rowBytes)..<((rows - row) * rowBytes)]
      })
  }

  @Test("JSON: duplicate keys, escapes and big integers")
  func json() throws {
    #expect(throws: CheckpointError.self) { try JSON.parse("{\"a\":1,\"a\":2}", path: "x") }
    // Keys differ when their code points do (JSON), even if Swift strings call them equal.
    #expect(try JSON.parse("{\"\u{E9}\":1,\"e\u{301}\":2}", path: "x").objectValue?.count == 2)
    #expect(throws: CheckpointError.self) { try JSON.parse("{\"\u{E9}\":1,\"e\u{301}\":2,\"e\u{301}\":3}", path: "x") }
    let value = try JSON.parse(" {\"k\":\"\\u00e9\\ud83d\\ude00\\n\",\"n\":18446744073709551615} ", path: "x")
    #expect(value["k"]?.stringValue == "é😀\n")
    #expect(value["n"]?.uint64Value == UInt64.max)
    #expect(try JSON.parse(value.compactText, path: "x") == value)
    #expect(throws: CheckpointError.self) { try JSON.parse(String(repeating: "[", count: 1000), path: "x") }
  }
}
