import TestSupport
import Testing

@testable import Checkpoints

/// The safetensors fixtures `fixtures/generate.py` writes with the reference library, each
/// against the JSON written beside it: names, dtypes, shapes and the exact bytes.
@Suite("safetensors fixtures of edge cases, against the JSON the reference library wrote")
struct CommittedFixtureTests {
  static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
  }

  /// Every tensor of `entries` (name -> {dtype, shape, hex}) is in `checkpoint` with those bytes.
  func expectBytes(_ checkpoint: Checkpoint, _ entries: [(key: String, value: JSON)]) throws {
    #expect(checkpoint.tensors.count == entries.count)
    for (name, entry) in entries {
      let tensor = try #require(checkpoint.tensor(named: name), "\(name)")
      #expect(tensor.dtype.rawValue == entry["dtype"]?.stringValue, "\(name)")
      #expect(tensor.shape == (entry["shape"]?.arrayValue ?? []).compactMap(\.intValue), "\(name)")
      #expect(Self.hex(try tensor.copyBytes()) == entry["hex"]?.stringValue, "\(name)")
    }
  }

  @Test("Scalars and zero-size tensors (edge), the dtypes beyond the common ones (C64, F8 variants), no tensors at all")
  func edgeCases() throws {
    try expectBytes(
      try Checkpoint.open(Fixtures.path("safetensors/edge.safetensors")),
      try #require(Fixtures.json("safetensors/edge.json").objectValue))
    let exotic = try #require(Fixtures.json("safetensors/exotic_dtypes.json").objectValue)
    try expectBytes(
      try Checkpoint.open(Fixtures.path("safetensors/exotic_dtypes.safetensors")),
      exotic.map { entry in
        (key: entry.key, value: entry.value)
      })
    #expect(try Checkpoint.open(Fixtures.path("safetensors/empty.safetensors")).tensors.isEmpty)
  }

  @Test("Metadata and data at odd offsets, as the JSON records them")
  func metadataAndOffsets() throws {
    let written = try Fixtures.json("safetensors/metadata.json")
    let checkpoint = try Checkpoint.open(Fixtures.path("safetensors/metadata.safetensors"))
    for (key, value) in try #require(written["metadata"]?.objectValue) {
      #expect(checkpoint.metadata.first { $0.key == key }?.value == value.stringValue, "\(key)")
    }
    try expectBytes(checkpoint, try #require(written["tensors"]?.objectValue))
    let layout = try Fixtures.json("safetensors/unaligned.json")
    let file = try SafeTensorsFile(path: Fixtures.path("safetensors/unaligned.safetensors"))
    #expect(file.dataStart == layout["data_start"]?.intValue)
    #expect(try file.file.load(UInt64.self, at: 0) == UInt64(layout["header_length"]?.intValue ?? -1))
    try expectBytes(
      try Checkpoint.open(Fixtures.path("safetensors/unaligned.safetensors")),
      try #require(layout["tensors"]?.objectValue))
  }

  @Test(
    "F32 rounded to BF16 and F16 gives the bits ml_dtypes/numpy give (ties to even, subnormals, overflow, NaN)",
    arguments: ["special", "random"])
  func rounding(_ set: String) throws {
    let entry = try #require(Fixtures.json("safetensors/rounding.json")[set])
    let tensor = try #require(try Checkpoint.open(Fixtures.path("safetensors/rounding.safetensors")).tensor(named: set))
    let values = try tensor.floats()
    for (dtype, key) in [(DType.bf16, "bf16_bits"), (.f16, "f16_bits")] {
      var bytes = [UInt8](repeating: 0, count: values.count * 2)
      bytes.withUnsafeMutableBytes { FloatConversion.narrow(values, to: dtype, into: $0) }
      let bits = stride(from: 0, to: bytes.count, by: 2).map { i in
        String(UInt16(bytes[i]) | UInt16(bytes[i + 1]) << 8, radix: 16).leftPadded(to: 4)
      }
      let expected = (entry[key]?.arrayValue ?? []).compactMap(\.stringValue)
      #expect(bits.count == expected.count)
      for (index, (got, want)) in zip(bits, expected).enumerated() {
        // A NaN stays a NaN; numpy keeps a signalling NaN's payload bits where fedlora writes
        // the quiet NaN, as IEEE 754's conversion does.
        if values[index].isNaN {
          let half = UInt16(got, radix: 16) ?? 0
          #expect(
            dtype == .bf16 ? half & 0x7F80 == 0x7F80 && half & 0x7F != 0 : half & 0x7C00 == 0x7C00 && half & 0x3FF != 0,
            "\(set)[\(index)]")
        } else {
          #expect(got == want, "\(set) \(dtype) [\(index)] of \(values[index])")
        }
      }
    }
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
