import Checkpoints

/// File-level inspection: the same facts as text for people and as JSON for pipelines.
enum FileReport {
  static let arrayLimit = 16
  static let metadataLimit = 1_000

  static func formatName(_ checkpoint: Checkpoint) -> String {
    switch checkpoint.format {
    case .safetensors: "safetensors"
    case .shardedSafetensors: "safetensors, \(checkpoint.files.count) shards"
    case .gguf: "GGUF v\(checkpoint.gguf?.version ?? 0), alignment \(checkpoint.gguf?.alignment ?? 0)"
    case .pytorch: "PyTorch zip (torch.save), pickle interpreted, never run"
    case .shardedPytorch: "PyTorch zips (torch.save), \(checkpoint.files.count) shards, pickles interpreted, never run"
    }
  }

  static func metadataJSON(_ checkpoint: Checkpoint) -> JSON {
    if let gguf = checkpoint.gguf {
      return .object(
        gguf.metadata.map {
          ($0.key, .object([("type", .string(typeName($0.value))), ("value", $0.value.json(arrayLimit: arrayLimit))]))
        })
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
      (
        "dtypes",
        .object(
          summary.dtypes.map {
            (
              $0.dtype.rawValue,
              .object([
                ("tensors", JSON($0.count.tensors)), ("parameters", JSON($0.count.parameters)),
                ("bytes", JSON($0.count.bytes)),
              ])
            )
          })
      ),
      ("metadata", metadataJSON(checkpoint)),
    ]
    if let tensors {
      fields.append(
        (
          "tensors",
          .array(
            tensors.map { tensor in
              .object([
                ("name", .string(tensor.name)), ("dtype", .string(tensor.dtype.rawValue)),
                ("shape", .array(tensor.shape.map { JSON($0) })), ("file", .string(tensor.file.path)),
                ("offset", JSON(tensor.offset)), ("bytes", JSON(tensor.byteCount)),
              ])
            })
        ))
    }
    return .object(fields)
  }

  static func text(_ checkpoint: Checkpoint, tensors: [Tensor]?) -> [String] {
    let summary = CheckpointSummary(checkpoint)
    var lines = [Terminal.bold(checkpoint.path.visible)]
    func field(_ name: String, _ value: String) { lines.append("  " + name.padding(12) + value) }
    field("format", formatName(checkpoint))
    field("tensors", NumberFormat.count(summary.tensorCount))
    field("parameters", NumberFormat.count(summary.parameterCount))
    field(
      "bytes",
      "\(NumberFormat.bytes(summary.dataBytes)) of tensor data, \(NumberFormat.bytes(summary.fileBytes)) on disk")
    field("dtypes", summary.dtypes.map { "\($0.dtype.rawValue) x\($0.count.tensors)" }.joined(separator: ", "))
    let metadata: [(String, String)] =
      checkpoint.gguf.map { gguf in
        gguf.metadata.map { ($0.key, describe($0.value)) }
      } ?? checkpoint.metadata.map { ($0.key, $0.value) }
    if !metadata.isEmpty {
      // A terminal view shows the first entries (--json has every one): a header can carry millions.
      lines.append("  metadata")
      let shown = metadata.prefix(metadataLimit)
      let width = shown.map(\.0.count).max() ?? 0
      for (key, value) in shown { lines.append("    " + key.visible.padding(width + 2) + value.visible) }
      if metadata.count > metadataLimit {
        lines.append("    ... \(NumberFormat.count(metadata.count - metadataLimit)) more (all of them with --json)")
      }
    }
    if let tensors {
      var table = Table([("name", .left), ("dtype", .left), ("shape", .left), ("offset", .right), ("bytes", .right)])
      for tensor in tensors {
        table.add([
          tensor.name, tensor.dtype.rawValue, NumberFormat.shape(tensor.shape), NumberFormat.count(tensor.offset),
          NumberFormat.count(tensor.byteCount),
        ])
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
