import Checkpoints
import Foundation
import TestSupport
import Testing

/// What a careful user (a practitioner, an auditor, a pipeline author) trips on: audits that a
/// partial merge cannot pass, outputs that do not depend on how clients are spelled or ordered,
/// reports that explain themselves.
@Suite("CLI: audits that cannot be fooled, order-free outputs, reports that explain themselves")
struct CarefulUserTests {
  static let adapters = Fixtures.path("adapters")
  static let clients = ["client_a", "client_b", "client_c"].map { adapters + "/" + $0 }

  static func json(_ arguments: [String], directory: String? = nil) throws -> (CLI.Result, JSON) {
    let result = try CLI.run(arguments + ["--json"], directory: directory)
    return (result, try JSON.parse(result.stdout, path: "stdout"))
  }

  @Test("An audit compares the recorded provenance first: a client left out or added fails --expect unless waived")
  func provenance() throws {
    let folder = Fixtures.scratch("provenance")
    defer { Fixtures.remove(folder) }
    let (a, b, c) = (Self.clients[0], Self.clients[1], Self.clients[2])
    let partial = folder + "/partial"
    #expect(try CLI.run(["merge", a, b, "--method", "fedavg", "-o", partial, "--quiet"]).status == 0)
    // One client more than was merged: numbers alone would pass --expect fedavg.
    let (added, document) = try Self.json(["inspect", a, b, c, "--against", partial, "--expect", "fedavg"])
    #expect(added.status == 1 && document["error"]?["code"]?.stringValue == "provenance-mismatch")
    let record = document["provenance"]
    #expect(record?["recorded"] == .bool(true) && record?["method"]?.stringValue == "fedavg")
    #expect(record?["unknown"]?.arrayValue?.compactMap(\.stringValue) == [c])
    #expect(record?["matched"]?.arrayValue?.count == 2 && record?["missing"]?.arrayValue?.isEmpty == true)
    #expect(record?["mismatches"]?.arrayValue?.compactMap(\.stringValue) == ["clients"])
    #expect(document["expectation_met"] == .bool(false))
    // Waived by name: judged on its numbers (worse than FedAvg of all three), the waiver recorded.
    let (waived, judged) = try Self.json([
      "inspect", a, b, c, "--against", partial, "--expect", "fedavg", "--waive", "clients",
    ])
    #expect(waived.status == 1 && judged["error"]?["code"]?.stringValue == "expectation-failed")
    #expect(judged["provenance"]?["waived"]?.arrayValue?.compactMap(\.stringValue) == ["clients"])
    // One client fewer than was merged: named as missing.
    let full = folder + "/full"
    #expect(try CLI.run(["merge", a, b, c, "--method", "fedavg", "-o", full, "--quiet"]).status == 0)
    let (fewer, missing) = try Self.json(["inspect", a, b, "--against", full, "--expect", "fedavg"])
    #expect(fewer.status == 1 && missing["provenance"]?["missing"]?.arrayValue?.compactMap(\.stringValue) == [c])
    // Other weights than the recorded ones, and another method than expected.
    let (weights, other) = try Self.json([
      "inspect", a, b, c, "--against", full, "--expect", "fedavg", "--weights", "1,2,3",
    ])
    #expect(weights.status == 1 && other["provenance"]?["weights_match"] == .bool(false))
    let svd = folder + "/svd"
    #expect(try CLI.run(["merge", a, b, c, "--method", "svd", "--rank", "8", "-o", svd, "--quiet"]).status == 0)
    let (method, named) = try Self.json(["inspect", a, b, c, "--against", svd, "--expect", "flora-na"])
    #expect(method.status == 1 && named["error"]?["message"]?.stringValue?.contains("records method svd") == true)
    #expect(
      try CLI.run(["inspect", a, b, c, "--against", svd, "--expect", "flora-na", "--waive", "method"]).status == 0)
    // The floor reached is named: optimal at its rank.
    let (floor, optimal) = try Self.json(["inspect", a, b, c, "--against", svd, "--expect", "floor"])
    #expect(floor.status == 0 && optimal["verdict_code"]?.stringValue == "optimal-at-rank")
    #expect(optimal["verdict"]?.stringValue?.contains("optimal at rank 8") == true)
    #expect(optimal["provenance"]?["rank"]?.intValue == 8)
    // No record: judged on its numbers, and the text says so.
    let bare = try CLI.run(["inspect", a, b, "--against", Self.clients[2]])
    #expect(bare.stdout.contains("records none (not written by fedlora): judged on its numbers only"))
    #expect(try CLI.run(["inspect", a, b, "--against", full, "--waive", "clients"]).status == 64)
    #expect(try CLI.run(["inspect", a, b, "--against", full, "--expect", "fedavg", "--waive", "nope"]).status == 64)
  }

  @Test("The output dtype does not depend on the clients' order: theirs when they agree, else the narrowest exact one")
  func dtypeOrder() throws {
    let folder = Fixtures.scratch("dtype-order")
    defer { Fixtures.remove(folder) }
    let (bf16, f32) = (Self.adapters + "/client_bf16", Self.clients[1])
    var written: [[UInt8]] = []
    for (name, order) in [("one", [bf16, f32]), ("two", [f32, bf16])] {
      let (run, report) = try Self.json(["merge"] + order + ["--method", "fedavg", "-o", folder + "/" + name])
      #expect(run.status == 0 && report["dtype"]?.stringValue == "F32" && report["dtype_source"] == .string("widest"))
      let checkpoint = try Checkpoint.open(folder + "/" + name)
      #expect(checkpoint.tensors.allSatisfy { $0.dtype == .f32 })
      written.append(try checkpoint.tensors.sorted { $0.name < $1.name }.flatMap { try $0.copyBytes() })
    }
    #expect(written[0].count == written[1].count)
    let text = try CLI.run(["merge", bf16, f32, "--method", "fedavg", "-o", folder + "/three"])
    #expect(text.stdout.contains("dtype: F32, the narrowest that holds every client's values exactly"))
    let (given, chosen) = try Self.json(["merge", bf16, f32, "--dtype", "bf16", "-o", folder + "/four"])
    #expect(given.status == 0 && chosen["dtype_source"] == .string("given") && chosen["dtype"] == .string("BF16"))
  }

  @Test("The same clients spelled ./c0 and c0 write the same bytes; the record holds one normal form")
  func spelling() throws {
    let folder = Fixtures.scratch("spelling")
    defer { Fixtures.remove(folder) }
    for (name, spelled) in [("plain", ["client_a", "client_b/"]), ("dotted", ["./client_a", ".//client_b"])] {
      let run = try CLI.run(
        ["merge"] + spelled + ["-o", folder + "/" + name, "--method", "fedavg", "--quiet"], directory: Self.adapters)
      #expect(run.status == 0, "\(run.stderr)")
    }
    #expect(
      try Fixtures.read(folder + "/plain/adapter_model.safetensors")
        == Fixtures.read(folder + "/dotted/adapter_model.safetensors"))
    let recorded = try Checkpoint.open(folder + "/plain").metadata.first { $0.key == "fedlora.clients" }?.value
    #expect(recorded == #"["client_a","client_b"]"#)
  }

  @Test("Warnings that apply: zero-padding only for the rules that pad; one error form; a recipe of plain paths")
  func smallerThings() throws {
    let folder = Fixtures.scratch("smaller")
    defer { Fixtures.remove(folder) }
    let mixed = [Self.clients[0], Self.adapters + "/client_r4"]
    let svd = try CLI.run(["merge"] + mixed + ["--method", "svd", "-o", folder + "/svd"])
    #expect(svd.status == 0 && !svd.stderr.contains("zero-padded"), "\(svd.stderr)")
    let fedavg = try CLI.run(["merge"] + mixed + ["--method", "fedavg", "-o", folder + "/fedavg"])
    #expect(fedavg.status == 0 && fedavg.stderr.contains("zero-padded"))
    // Usage errors from the argument parser and from the commands open alike.
    for arguments in [["merge", "--nope"], ["merge", Self.clients[0], "-o", folder + "/x", "--rank", "4"]] {
      let run = try CLI.run(arguments)
      #expect(run.status == 64 && run.stderr.hasPrefix("fedlora: error: "), "\(run.stderr)")
    }
    // A recipe listing plain paths, with no_errors and keep_weights.
    let recipe = """
      method: fedavg
      clients: [\(Self.clients[0]), \(Self.clients[1])]
      output: merged
      no_errors: true
      """
    Fixtures.write(Array(recipe.utf8), to: folder + "/recipe.yaml")
    let (run, report) = try Self.json(["merge", "--recipe", folder + "/recipe.yaml"])
    #expect(run.status == 0 && report["model"]?["relative_error"] == .null, "\(run.stdout)")
    Fixtures.write(Array((recipe + "\nno_errors: false\n").utf8), to: folder + "/twice.yaml")
    #expect(try CLI.run(["merge", "--recipe", folder + "/twice.yaml"]).status == 64)
  }

  @Test("A PEFT client's relative base_model_name_or_path is found from any working folder (GGUF q/k row order)")
  func baseFromAnywhere() throws {
    let folder = Fixtures.scratch("anywhere")
    defer { Fixtures.remove(folder) }
    let run = try CLI.run(
      [
        "merge", Self.adapters + "/gguf/client_a.gguf", Self.adapters + "/client_r4", Self.adapters + "/client_rslora",
        "-o", "svd.gguf", "--method", "svd", "--rank", "8", "--quiet",
      ], directory: folder)
    #expect(run.status == 0 && Checkpoint.exists(folder + "/svd.gguf"), "\(run.stderr)")
  }

  @Test("Reports explain themselves: a legend, the summary and verdict in every format, clients and modules named")
  func explained() throws {
    let folder = Fixtures.scratch("explained")
    defer { Fixtures.remove(folder) }
    let merge = try CLI.run(["merge"] + Self.clients + ["-o", folder + "/m", "--explain"])
    let header = merge.stdout.split(separator: "\n").first { $0.hasPrefix("module") } ?? ""
    #expect(header.contains("norm_T") && header.contains("relative_error") && !header.contains("||T||"))
    #expect(merge.stdout.contains("the best any rank-8 adapter can do") && merge.stdout.contains("columns:"))
    for format in ["--csv", "--markdown", "--explain"] {
      let run = try CLI.run(
        ["inspect"] + Self.clients + ["--against", folder + "/m", format, "--plot", folder + "/p.svg"])
      #expect(run.status == 0 && run.stdout.contains("VERDICT:") && run.stdout.contains("model: fedavg"), "\(format)")
      #expect(run.stdout.contains(format == "--csv" ? "cos_1" : "cos(client_a)"), "\(format)")
    }
    let svg = String(decoding: try Fixtures.read(folder + "/p.svg"), as: UTF8.self)
    #expect(
      svg.contains(">0.self_attn.q_proj</text>") && svg.contains("module (model.layers.")
        && svg.contains("bar") == false)
    #expect(try CLI.run(["inspect"] + Self.clients + ["--explain", "--json"]).status == 64)
  }
}
