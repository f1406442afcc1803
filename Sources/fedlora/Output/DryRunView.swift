import Checkpoints

/// What a `--dry-run` prints: each file the command would write (path, tensors, dtypes, bytes,
/// whether it replaces a file there), and for a merge each layer's output rank. Nothing is
/// written and no tensor data is computed.
enum DryRunView {
  struct Layer {
    let name: String
    let shape: [Int]
    let rank: Int
    /// Why the rank may still come out lower (svd's clamp, not computed in a dry run).
    let note: String?
  }

  /// `summary`: the document's fields before `files` (a merge's method, clients and weights).
  static func show(
    _ files: [(path: String, tensors: [OutputTensor])], layers: [Layer], summary: [(key: String, value: JSON)] = []
  ) {
    var documents: [JSON] = []
    for file in files {
      let bytes = file.tensors.reduce(0) { $0 + $1.byteCount }
      var dtypes: [(key: String, value: JSON)] = []
      for tensor in file.tensors where !dtypes.contains(where: { $0.key == tensor.dtype.rawValue }) {
        dtypes.append((tensor.dtype.rawValue, JSON(file.tensors.filter { $0.dtype == tensor.dtype }.count)))
      }
      let replaces = Checkpoint.exists(file.path)
      documents.append(
        .object([
          ("path", .string(file.path)), ("tensors", JSON(file.tensors.count)), ("dtypes", .object(dtypes)),
          ("bytes", JSON(bytes)), ("replaces", .bool(replaces)),
        ]))
      let what =
        file.tensors.isEmpty
        ? "a metadata file (no tensors)"
        : "\(file.tensors.count) tensor\(file.tensors.count == 1 ? "" : "s") (\(dtypes.map { "\($0.key) x\($0.value.compactText)" }.joined(separator: ", "))), \(NumberFormat.bytes(bytes)) of tensor data"
      Session.result("would write \(file.path): \(what)\(replaces ? ", replacing the file there" : "")")
    }
    if !layers.isEmpty {
      var table = Table([("module", .left), ("shape", .left), ("rank", .right)])
      for layer in layers {
        table.add([
          layer.name, NumberFormat.shape(layer.shape), layer.note == nil ? "\(layer.rank)" : "<= \(layer.rank)",
        ])
      }
      table.render().forEach(Session.result)
      if let note = layers.compactMap(\.note).first { Session.result("note: \(note)") }
    }
    Session.result("dry run: nothing written")
    Session.finish(
      [("dry_run", .bool(true))] + summary + [("files", .array(documents))] + [
        (
          "layers",
          .array(
            layers.map { layer in
              .object([
                ("name", .string(layer.name)), ("shape", .array(layer.shape.map { JSON($0) })),
                ("rank", JSON(layer.rank)),
                ("rank_is_upper_bound", .bool(layer.note != nil)),
              ])
            })
        )
      ])
  }
}
