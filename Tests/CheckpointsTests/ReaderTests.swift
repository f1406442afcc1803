import TestSupport
import Testing

@testable import Checkpoints

@Suite("Readers on fixtures written by the reference libraries")
struct ReaderTests {
  /// Every tensor's values equal the expected ones of the fixture JSON, bit for bit.
  func expectValues(_ checkpoint: Checkpoint, _ expected: JSON, skipUndecodable: Bool = false) throws {
    let entries = try #require(expected.objectValue)
    #expect(checkpoint.tensors.count == entries.count)
    for (name, entry) in entries {
      let tensor = try #require(checkpoint.tensor(named: name), "missing \(name)")
      if let dtype = entry["dtype"]?.stringValue ?? entry["type"]?.stringValue {
        #expect(tensor.dtype.rawValue == dtype)
      }
      #expect(tensor.shape == entry["shape"]?.arrayValue?.compactMap(\.intValue), "\(name)")
      guard tensor.dtype.isComputable || tensor.dtype.isInteger else { continue }
      let expectedValues = Fixtures.values(entry["values"])
      if tensor.dtype.isInteger {
        #expect(tensor.byteCount == expectedValues.count * (tensor.dtype.bitsPerElement ?? 8) / 8)
        continue
      }
      let values = try tensor.floats()
      #expect(values.count == expectedValues.count)
      for (i, (value, want)) in zip(values, expectedValues).enumerated() where tensor.dtype != .f64 {
        #expect(sameFloat(Double(value), want), "\(name)[\(i)]: \(value) != \(want)")
      }
    }
  }

  @Test("safetensors in every dtype")
  func dtypes() throws {
    let checkpoint = try Checkpoint.open(Fixtures.path("safetensors/dtypes.safetensors"))
    #expect(checkpoint.format == .safetensors)
    try expectValues(checkpoint, Fixtures.json("safetensors/dtypes.json"))
  }

  @Test("safetensors metadata and unaligned data")
  func metadataAndUnaligned() throws {
    let checkpoint = try Checkpoint.open(Fixtures.path("safetensors/metadata.safetensors"))
    #expect(checkpoint.metadata.first { $0.key == "note" }?.value == "héllo ✓")
    #expect(checkpoint.metadata.first { $0.key == "format" }?.value == "pt")
    let unaligned = try Checkpoint.open(Fixtures.path("safetensors/unaligned.safetensors"))
    #expect(unaligned.tensors.contains { $0.offset % 2 != 0 }, "the fixture has data at odd offsets")
    for tensor in unaligned.tensors where tensor.dtype.isComputable { _ = try tensor.floats() }
  }

  @Test("sharded checkpoint through its folder and its index")
  func sharded() throws {
    for path in ["sharded", "sharded/model.safetensors.index.json"] {
      let checkpoint = try Checkpoint.open(Fixtures.path(path))
      #expect(checkpoint.format == .shardedSafetensors)
      #expect(checkpoint.files.count == 3)
      try expectValues(checkpoint, Fixtures.json("sharded/sharded.json"))
    }
  }

  @Test(
    "GGUF v3 with every metadata type and F32/F16/BF16/Q8_0/Q4_0 tensors", arguments: ["all_types", "align64", "v2"])
  func gguf(_ name: String) throws {
    let checkpoint = try Checkpoint.open(Fixtures.path("gguf/\(name).gguf"))
    let expected = try Fixtures.json("gguf/\(name).json")
    let gguf = try #require(checkpoint.gguf)
    #expect(Int(gguf.version) == expected["version"]?.intValue)
    #expect(gguf.alignment == expected["alignment"]?.intValue)
    #expect(gguf.dataStart == expected["data_offset"]?.intValue)
    try expectValues(checkpoint, try #require(expected["tensors"]))
    for (key, entry) in expected["metadata"]?.objectValue ?? [] {
      let value = try #require(gguf[key], "missing key \(key)")
      let typeName = try #require(entry["type"]?.stringValue)
      #expect(Self.typeNames[value.type] == typeName, "\(key)")
      if case let .array(element, _) = value { #expect(Self.typeNames[element] == entry["elem_type"]?.stringValue) }
      #expect(
        value.json() == (entry["value"] ?? .null) || Self.closeFloats(value.json(), entry["value"]), "\(key): \(value)")
    }
  }

  static let typeNames: [GGUFValueType: String] = [
    .u8: "UINT8", .i8: "INT8", .u16: "UINT16", .i16: "INT16", .u32: "UINT32", .i32: "INT32", .f32: "FLOAT32",
    .bool: "BOOL", .string: "STRING", .array: "ARRAY", .u64: "UINT64", .i64: "INT64", .f64: "FLOAT64",
  ]

  /// Float metadata printed by Python and by Swift may differ in digits, not in value.
  static func closeFloats(_ a: JSON, _ b: JSON?) -> Bool {
    switch (a, b) {
    case let (.number(x), .number(y)?): Double(x) == Double(y) || Float(x) == Float(y)
    case let (.array(x), .array(y)?): x.count == y.count && zip(x, y).allSatisfy { closeFloats($0, $1) }
    default: false
    }
  }

  @Test("Header-only reading does not touch tensor data (sparse 1 TB file)")
  func headerOnly() throws {
    let folder = Fixtures.scratch("sparse")
    let path = folder + "/big.safetensors"
    let size: UInt64 = 1 << 40
    var header = Array("{\"w\":{\"dtype\":\"BF16\",\"shape\":[\(size / 2)],\"data_offsets\":[0,\(size)]}}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    try OutputTransaction.run(in: nil) { transaction in
      try transaction.file(path) { output in
        try output.write(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header, at: 0)
        try output.setLength(Int(UInt64(8 + header.count) + size))
      }
    }
    let checkpoint = try Checkpoint.open(path)
    #expect(checkpoint.tensors.first?.byteCount == Int(size))
  }

  /// Writes `count` one-tensor shards of four F32 values each (tensor i holds i, i+1, i+2, i+3).
  func writeShards(_ count: Int, to folder: String) throws {
    let tensors = (0..<count).map { i in
      OutputTensor(name: "t\(i)", dtype: .f32, shape: [4], values: (0..<4).map { Float(i + $0) })
    }
    try SafeTensorsWriter.writeSharded(tensors, shardSize: 16, to: folder)
  }

  @Test("A checkpoint of more shards than may stay mapped is read whole (idle maps released, mapped again)")
  func moreShardsThanMaps() throws {
    let folder = Fixtures.scratch("many-shards")
    try writeShards(40, to: folder + "/model")
    let limit = MapBudget.shared.setLimit(4)
    defer { MapBudget.shared.setLimit(limit) }
    let before = MapBudget.shared.counts.releases
    let checkpoint = try Checkpoint.open(folder + "/model")
    #expect(checkpoint.files.count == 40)
    // Twice: the second pass maps again what the first released.
    for _ in 0..<2 {
      for i in 0..<40 {
        #expect(try checkpoint.tensor(named: "t\(i)")?.floats() == (0..<4).map { Float(i + $0) })
      }
    }
    #expect(MapBudget.shared.counts.releases - before >= 70)
  }

  @Test("A file replaced on disk after its map was released is refused when read again")
  func replacedAfterRelease() throws {
    let folder = Fixtures.scratch("replaced")
    try writeShards(1, to: folder + "/one")
    try writeShards(2, to: folder + "/two")
    let limit = MapBudget.shared.setLimit(1)
    defer { MapBudget.shared.setLimit(limit) }
    let first = try Checkpoint.open(folder + "/one")
    _ = try Checkpoint.open(folder + "/two")  // maps two more files: the first one's map is released
    try SafeTensorsWriter.write(
      [OutputTensor(name: "t0", dtype: .f32, shape: [4], values: [9, 9, 9, 9])], to: first.files[0].path)
    #expect {
      _ = try first.tensors[0].floats()
    } throws: { error in
      "\(error)".contains("changed on disk")
    }
  }

  @Test("Header keys are unique byte for byte: canonically equal names are two tensors, a repeated one is refused")
  func exactKeys() throws {
    let folder = Fixtures.scratch("keys")
    func file(_ names: [String]) -> String {
      let entries = names.enumerated().map { i, name in
        "\"\(name)\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[\(i),\(i + 1)]}"
      }
      var header = Array("{\(entries.joined(separator: ","))}".utf8)
      while header.count % 8 != 0 { header.append(0x20) }
      let path = folder + "/\(names.count)-\(header.count).safetensors"
      Fixtures.write(
        withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header
          + [UInt8](repeating: 7, count: names.count), to: path)
      return path
    }
    #expect(try Checkpoint.open(file(["\u{E9}", "e\u{301}"])).tensors.count == 2)
    #expect {
      try Checkpoint.open(file(["w", "a", "w"]))
    } throws: { error in
      (error as? CheckpointError)?.code == "duplicate-key"
    }
  }
}
