import Checkpoints
import TestSupport
import Testing

@Suite("CLI: inspect of adapters and client sets")
struct InspectAdapterTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }

  @Test("One adapter: per-layer statistics match the dense reference")
  func single() throws {
    let result = try CLI.run(["inspect", Fixtures.path("adapters/client_rslora"), "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let json = try JSON.parse(result.stdout, path: "stdout")
    #expect(json["schema"]?.stringValue == "fedlora.inspect.adapter/1")
    let expected = try #require(try Fixtures.json("adapters/expected.json")["clients"]?["client_rslora"]?["modules"])
    let layers = try #require(json["layers"]?.arrayValue)
    #expect(layers.count == expected.objectValue?.count)
    for layer in layers {
      let name = try #require(layer["module"]?.stringValue)
      let want = try #require(expected[name])
      for (ours, theirs) in [
        ("norm_A", "norm_A"), ("norm_B", "norm_B"), ("norm_sBA", "norm_sBA"), ("stable_rank", "stable_rank"),
        ("scale", "scale"),
      ] {
        let (a, b) = (layer[ours]?.doubleValue ?? .nan, want[theirs]?.doubleValue ?? .nan)
        #expect(abs(a - b) <= 1e-5 * abs(b), "\(name) \(ours): \(a) vs \(b)")
      }
      let sigma1 = want["singular_values_sBA"]?.arrayValue?.first?.doubleValue ?? .nan
      #expect(abs((layer["sigma_1"]?.doubleValue ?? 0) - sigma1) <= 1e-5 * sigma1)
    }
  }

  @Test("Clients: errors match expected.json, floor <= flora-na <= fedavg in every row, --against gives a verdict")
  func clients() throws {
    let folder = Fixtures.scratch("inspect")
    #expect(
      try CLI.run(["merge"] + Self.clients + ["--method", "fedavg", "-o", folder + "/fedavg", "--quiet"]).status == 0)
    let result = try CLI.run(
      ["inspect"] + Self.clients + ["--against", folder + "/fedavg", "--json", "--plot", folder + "/plot.svg"])
    #expect(result.status == 0, "\(result.stderr)")
    let json = try JSON.parse(result.stdout, path: "stdout")
    let expected = try Fixtures.json("adapters/expected.json")["sets"]?["abc_uniform"]
    #expect(
      abs((json["model"]?["flora_na"]?.doubleValue ?? 0) - (expected?["model_flora_na_rel_error"]?.doubleValue ?? 1))
        < 1e-6)
    #expect(abs((json["model"]?["against"]?.doubleValue ?? 0) - (json["model"]?["fedavg"]?.doubleValue ?? 1)) < 1e-6)
    #expect(json["verdict"]?.stringValue?.contains("no better than FedAvg") == true)
    for row in json["layers"]?.arrayValue ?? [] {
      let (floor, flora, fedavg) = (
        row["floor"]?.doubleValue ?? 1, row["flora_na"]?.doubleValue ?? 0, row["fedavg"]?.doubleValue ?? 0
      )
      #expect(floor <= flora * (1 + 1e-9) && flora <= fedavg * (1 + 1e-12))
    }

    // The plot is well-formed SVG whose data points are the JSON's numbers.
    let svg = String(decoding: try Fixtures.read(folder + "/plot.svg"), as: UTF8.self)
    #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n") && svg.contains("FLoRA-NA") && svg.contains("1e-"))
    #expect(svg.components(separatedBy: "<circle").count - 1 == 4 * (json["layers"]?.arrayValue?.count ?? 0))
    let firstFedAvg = json["layers"]?.arrayValue?.first?["fedavg"]?.doubleValue ?? 0
    #expect(svg.contains("data-series=\"FedAvg\" data-value=\"\(firstFedAvg)\""))
    var opens = 0
    for tag in ["<svg", "<polyline", "<circle", "<line", "<text", "<rect", "<title"] {
      opens += svg.components(separatedBy: tag).count - 1
    }
    var closes = svg.components(separatedBy: "/>").count - 1
    for tag in ["</svg>", "</polyline>", "</circle>", "</text>", "</title>"] {
      closes += svg.components(separatedBy: tag).count - 1
    }
    #expect(opens == closes, "every element is closed")
  }

  @Test("CSV, Markdown, --sort and --filter")
  func formats() throws {
    let csv = try CLI.run(["inspect"] + Self.clients + ["--csv", "--filter", "q_proj", "--sort", "fedavg"])
    #expect(csv.status == 0)
    let lines = csv.stdout.split(separator: "\n").filter { !$0.hasPrefix("# ") }
    #expect(lines.first?.hasPrefix("module,d,k,norm_T,cos_1") == true)
    // The summary follows the rows as comment lines, in CSV as in every format.
    #expect(csv.stdout.contains("\n# model: fedavg "))
    #expect(lines.count == 3 && lines.dropFirst().allSatisfy { $0.contains("q_proj") })
    let values = lines.dropFirst().compactMap { Double($0.split(separator: ",")[7]) }
    #expect(values == values.sorted(by: >))
    let markdown = try CLI.run([
      "inspect", Fixtures.path("adapters/gguf/client_a.gguf"), "--markdown", "--base-config",
      Fixtures.path("adapters/base/config.json"),
    ])
    #expect(markdown.stdout.hasPrefix("| module |") && markdown.stdout.contains("|---|"))
    #expect(try CLI.run(["inspect"] + Self.clients + ["--sort", "nope"]).status == 64)
  }

  @Test("An audited adapter whose shapes differ is refused by name, exit 1")
  func againstWrongShape() throws {
    let folder = Fixtures.scratch("wrong-shape")
    let source = try Checkpoint.open(Self.clients[0])
    let bad = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    let tensors = source.tensors.map { tensor in
      tensor.name == bad
        ? OutputTensor(name: bad, dtype: .f32, shape: [8, 32], values: [Float](repeating: 0, count: 256))
        : OutputTensor(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, source: .copy(tensor))
    }
    try SafeTensorsWriter.write(tensors, to: folder + "/adapter_model.safetensors")
    Fixtures.write(try Fixtures.read(Self.clients[0] + "/adapter_config.json"), to: folder + "/adapter_config.json")
    let result = try CLI.run(["inspect"] + Self.clients + ["--against", folder])
    #expect(result.status == 1)
    #expect(result.stderr.contains("q_proj") && result.stderr.contains("[64, 32]"))
  }

  @Test("A DoRA adapter is listed; plain checkpoints keep the header view")
  func listing() throws {
    let dora = try CLI.run(["inspect", Fixtures.path("adapters/client_dora")])
    #expect(dora.status == 0 && dora.stdout.contains("DoRA"))
    let header = try CLI.run(["inspect", Fixtures.path("adapters/base")])
    #expect(header.status == 0 && header.stdout.contains("format      safetensors"))
  }
}
