import TestSupport
import Testing

@testable import Checkpoints

@Suite("Malformed inputs: a clear error for each, never a crash")
struct MalformedTests {
  struct Case: CustomTestStringConvertible, Sendable {
    let file: String
    let code: String
    let contains: String
    var testDescription: String { "\(file) -> \(code)" }
  }

  static let cases: [Case] = {
    guard let list = try? Fixtures.json("malformed/cases.json").arrayValue else { return [] }
    return list.compactMap { entry in
      guard let file = entry["file"]?.stringValue, let code = entry["code"]?.stringValue else { return nil }
      return Case(file: file, code: code, contains: entry["contains"]?.stringValue ?? "")
    }
  }()

  @Test("The corpus has at least 25 cases")
  func corpusSize() { #expect(Self.cases.count >= 25) }

  @Test("Each malformed file is refused with its exact error", arguments: cases)
  func refused(_ testCase: Case) {
    let path = Fixtures.path("malformed/" + testCase.file)
    do {
      let checkpoint = try Checkpoint.open(path)
      Issue.record("accepted \(testCase.file) with \(checkpoint.tensors.count) tensors")
    } catch {
      #expect(error.code == testCase.code, "\(error)")
      #expect(error.description.contains(testCase.contains), "\(error.description)")
      #expect(error.description.contains(testCase.file.split(separator: "/").first.map(String.init) ?? ""))
    }
  }

  /// Thousands of truncations and byte flips of valid files each end in a value or an error.
  /// A crash fails the whole run; a huge allocation would exhaust memory and fail it too.
  @Test(
    "Mutations of valid fixtures never crash",
    arguments: [
      "safetensors/dtypes.safetensors", "safetensors/metadata.safetensors", "gguf/all_types.gguf", "gguf/align64.gguf",
    ])
  func mutations(_ fixture: String) throws {
    let original = try Fixtures.read(Fixtures.path(fixture))
    let folder = Fixtures.scratch("mutation")
    let path = folder + "/" + (fixture.split(separator: "/").last.map(String.init) ?? "x")
    var generator = SeededGenerator(seed: UInt64(original.count))
    var accepted = 0
    var refused = 0
    for round in 0..<1500 {
      var bytes = original
      if round % 3 == 0 {
        bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &generator)))
      } else {
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
          // Flip bytes in the header mostly: that is where lengths and counts live.
          let limit = min(bytes.count, round % 2 == 0 ? 400 : bytes.count)
          let index = Int.random(in: 0..<limit, using: &generator)
          bytes[index] = round % 5 == 0 ? 0xFF : UInt8.random(in: 0...255, using: &generator)
        }
      }
      Fixtures.write(bytes, to: path)
      do {
        let checkpoint = try Checkpoint.open(path)
        for tensor in checkpoint.tensors where tensor.dtype.isComputable { _ = try tensor.floats() }
        for tensor in checkpoint.tensors { _ = try TensorScan(tensor) }
        accepted += 1
      } catch {
        // Every refusal says which file it is about (and so which input a pipeline must fix).
        #expect(error.description.contains(path), "\(error.code): \(error.description)")
        refused += 1
      }
    }
    #expect(refused > 100, "most mutations should be refused (\(accepted) accepted)")
  }
}
