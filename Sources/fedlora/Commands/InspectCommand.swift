import ArgumentParser
import Checkpoints

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show what checkpoint files hold: format, tensors, dtypes, metadata.",
    discussion: """
      Reads headers only: listing never touches tensor data, so it is fast on checkpoints of any \
      size. PATH may be a .safetensors or .gguf file, a sharded model's index.json, or a folder \
      holding one of them (a PEFT adapter folder, a model folder).
      """
  )

  @Argument(help: "Checkpoint files or folders.", completion: .file())
  var paths: [String]

  @Flag(help: "List every tensor: name, dtype, shape, byte offset and size.")
  var tensors = false

  @Option(help: "With --tensors, list only tensors whose name matches this regular expression.")
  var filter: String?

  @Flag(help: "Print JSON (schema fedlora.inspect.file/1) on standard output.")
  var json = false

  func run() throws {
    let pattern: Regex<AnyRegexOutput>?
    do { pattern = try filter.map { try Regex($0) } } catch {
      throw ValidationError("--filter is not a valid regular expression: \(error)")
    }
    var reports: [JSON] = []
    for path in paths {
      let checkpoint: Checkpoint
      do { checkpoint = try Checkpoint.open(path) } catch { throw fail(error, json: json) }
      let listed = tensors
        ? checkpoint.tensors.filter { tensor in pattern.map { (try? $0.firstMatch(in: tensor.name)) != nil } ?? true }
        : nil
      if json {
        reports.append(FileReport.json(checkpoint, tensors: listed))
      } else {
        FileReport.text(checkpoint, tensors: listed).forEach(Terminal.out)
      }
    }
    if json {
      Terminal.out(JSON.object([("schema", .string("fedlora.inspect.file/1")), ("files", .array(reports))]).prettyText)
    }
  }
}

/// File-level inspection: the same facts as text for people and as JSON for pipelines.
enum FileReport {
  static let arrayLimit = 16

  static func formatName(_ checkpoint: Checkpoint) -> String {
    switch checkpoint.format {
    case .safetensors: "safetensors"
    case .shardedSafetensors: "safetensors, \(checkpoint.files.count) shards"
    case .gguf: "GGUF v\(checkpoint.gguf?.version ?? 0), alignment \(checkpoint.gguf?.alignment ?? 0)"
    }
  }

  static func metadataJSON(_ checkpoint: Checkpoint) -> JSON {
    if let gguf = checkpoint.gguf {
      return .object(gguf.metadata.map { ($0.key, .object([("type", .string(typeName($0.value))), ("value", $0.value.json(arrayLimit: arrayLimit))])) })
    }
    return .object(checkpoint.metadata.map { ($0.key, .string($0.value)) })
  }

  static func typeName(_ value: GGUFValue) -> String {
    if case let .array(element, _) = value { return "array[\(element.name)]" }
    return value.type.name
  }

  static func json(_ checkpoint: Checkpoint, tensors: [Tensor]?) -> JSON {
    let summary = CheckpointSummary(checkpoint)
    var fields: [(key: String, value: JSON)] = [
      ("path", .string(checkpoint.path)),
      ("resolved_path", .string(checkpoint.resolvedPath)),
      ("format", .string(checkpoint.format.rawValue)),
      ("version", checkpoint.gguf.map { JSON(Int($0.version)) } ?? .null),
      ("alignment", checkpoint.gguf.map { JSON($0.alignment) } ?? .null),
      ("files", .array(checkpoint.files.map { .string($0.path) })),
      ("tensor_count", JSON(summary.tensorCount)),
      ("parameter_count", JSON(summary.parameterCount)),
      ("data_bytes", JSON(summary.dataBytes)),
      ("file_bytes", JSON(summary.fileBytes)),
      ("dtypes", .object(summary.dtypes.map {
        ($0.dtype.rawValue, .object([("tensors", JSON($0.count.tensors)), ("parameters", JSON($0.count.parameters)), ("bytes", JSON($0.count.bytes))]))
      })),
      ("metadata", metadataJSON(checkpoint)),
    ]
    if let tensors {
      fields.append(("tensors", .array(tensors.map { tensor in
        .object([
          ("name", .string(tensor.name)), ("dtype", .string(tensor.dtype.rawValue)),
          ("shape", .array(tensor.shape.map { JSON($0) })), ("file", .string(tensor.file.path)),
          ("offset", JSON(tensor.offset)), ("bytes", JSON(tensor.byteCount)),
        ])
      })))
    }
    return .object(fields)
  }

  static func text(_ checkpoint: Checkpoint, tensors: [Tensor]?) -> [String] {
    let summary = CheckpointSummary(checkpoint)
    var lines = [Terminal.bold(checkpoint.path)]
    func field(_ name: String, _ value: String) { lines.append("  " + name.padding(12) + value) }
    field("format", formatName(checkpoint))
    field("tensors", Format.count(summary.tensorCount))
    field("parameters", Format.count(summary.parameterCount))
    field("bytes", "\(Format.bytes(summary.dataBytes)) of tensor data, \(Format.bytes(summary.fileBytes)) on disk")
    field("dtypes", summary.dtypes.map { "\($0.dtype.rawValue) x\($0.count.tensors)" }.joined(separator: ", "))
    let metadata: [(String, String)] = checkpoint.gguf.map { gguf in
      gguf.metadata.map { ($0.key, describe($0.value)) }
    } ?? checkpoint.metadata.map { ($0.key, $0.value) }
    if !metadata.isEmpty {
      lines.append("  metadata")
      let width = metadata.map(\.0.count).max() ?? 0
      for (key, value) in metadata { lines.append("    " + key.padding(width + 2) + value) }
    }
    if let tensors {
      var table = Table([("name", .left), ("dtype", .left), ("shape", .left), ("offset", .right), ("bytes", .right)])
      for tensor in tensors {
        table.add([tensor.name, tensor.dtype.rawValue, Format.shape(tensor.shape), Format.count(tensor.offset), Format.count(tensor.byteCount)])
      }
      lines.append("")
      lines += table.render(indent: "  ")
    }
    lines.append("")
    return lines
  }

  /// A metadata value in one line; long arrays are shortened to their first elements.
  static func describe(_ value: GGUFValue) -> String {
    switch value {
    case let .string(s): return s.count > 80 ? String(s.prefix(77)) + "..." : s
    case let .array(element, values):
      let shown = values.prefix(8).map(describe).joined(separator: ", ")
      return "[\(shown)\(values.count > 8 ? ", ..." : "")] (\(values.count) \(element.name))"
    default: return value.json().compactText
    }
  }
}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
