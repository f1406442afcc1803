extension Checkpoint {
  /// Tensors a program holds in memory, seen as a checkpoint named `name` (a safetensors file that has
  /// no file: `files` is empty, so nothing is hashed or mapped again).
  ///
  /// - Parameters:
  ///   - name: the checkpoint's path in messages and provenance.
  ///   - tensors: the tensors, for example made with ``Tensor/init(name:shape:values:dtype:)``.
  ///   - metadata: its `__metadata__` entries.
  public init(inMemory name: String, tensors: [Tensor], metadata: [(key: String, value: String)] = []) {
    self.init(
      path: name, resolvedPath: name, format: .safetensors, tensors: tensors, metadata: metadata, gguf: nil, files: [])
  }
}
