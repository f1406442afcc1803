import Adapters
import Checkpoints
import Foundation
import TestSupport
import Testing

@Suite("rank_pattern / alpha_pattern keys: PEFT's rule in linear time")
struct ModulePatternTests {
  @Test("Every key matches exactly the names Python's re matches (fixtures/patterns/expected.json)")
  func againstPython() throws {
    let expected = try Fixtures.json("patterns/expected.json")
    let names = (expected["names"]?.arrayValue ?? []).compactMap(\.stringValue)
    let matches = try #require(expected["matches"]?.objectValue)
    #expect(matches.count > 30 && names.count > 15)
    for (key, value) in matches {
      let pattern = try ModulePattern(key)
      let want = Set((value.arrayValue ?? []).compactMap(\.stringValue))
      #expect(Set(names.filter(pattern.matches)) == want, "\(key)")
    }
  }

  @Test("Catastrophic patterns end at once; unsupported syntax is refused with the reason")
  func hostile() throws {
    // A backtracking matcher needs about 2^5000 steps on these: the bound only separates linear
    // from exponential, so it leaves room for ThreadSanitizer and a loaded CI machine.
    let name = String(repeating: "a", count: 5_000) + "y"
    let start = Date()
    for key in ["(.*)*x", "(a|a)*b", "(a*)*b", "((a+)+)+c", "(.*a){20}"] {
      #expect(try !ModulePattern(key).matches(name), "\(key)")
    }
    #expect(Date().timeIntervalSince(start) < 60)
    for (key, reason) in [
      ("(a)\\1", "back-references"), ("(?=a)", "look-arounds"), ("(?P<x>a)", "named groups"), ("a{2000}", "above 1000"),
      ("(a{1000}){1000}", "too large"), ("(", "unclosed"), ("a)", "unbalanced"), ("*a", "nothing to repeat"),
    ] {
      #expect(throws: ModulePattern.Refusal.self, "\(key)") { try ModulePattern(key) }
      do { _ = try ModulePattern(key) } catch { #expect(error.message.contains(reason), "\(key): \(error.message)") }
    }
  }

  @Test("A config with a catastrophic pattern loads and merges in time; an unsupported one is refused by name")
  func configs() throws {
    let folder = Fixtures.scratch("patterns")
    let source = Fixtures.path("adapters/client_a")
    for (name, pattern) in [("slow", "(.*)*x"), ("bad", "(a)\\\\1")] {
      try FileManager.default.createDirectory(atPath: folder + "/" + name, withIntermediateDirectories: true)
      try FileManager.default.copyItem(
        atPath: source + "/adapter_model.safetensors", toPath: folder + "/\(name)/adapter_model.safetensors")
      let config = try String(contentsOfFile: source + "/adapter_config.json", encoding: .utf8)
        .replacingOccurrences(of: "\"alpha_pattern\": {}", with: "\"alpha_pattern\": {\"\(pattern)\": 4}")
      try config.write(toFile: folder + "/\(name)/adapter_config.json", atomically: true, encoding: .utf8)
    }
    let start = Date()  // exponential would never end; the bound leaves room for sanitizers
    let slow = try Adapter.load(folder + "/slow")
    #expect(slow.modules.allSatisfy { $0.alpha == 16 } && Date().timeIntervalSince(start) < 30)
    #expect(throws: AdapterError.self) { try Adapter.load(folder + "/bad") }
  }
}
