#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif
/// Checks, before anything is read, that a run's outputs cannot destroy its inputs: paths are
/// compared as the kernel resolves them (symlinks, `.`, `..`, trailing slashes, relative or
/// absolute), not as spelled.
public enum PathConflicts {
  /// An output of the run: a file, or a folder and the names of the files it writes in it.
  public struct Output {
    /// The output path as spelled; it is resolved only for comparison.
    public let path: String
    /// For a folder output, whether a file of this name in the folder is one the output writes.
    public let writes: ((String) -> Bool)?

    /// A file output at `path`.
    /// - Parameter path: the output file as spelled.
    /// - Returns: the output, for ``PathConflicts/check(_:inputs:)``.
    public static func file(_ path: String) -> Output { Output(path: path, writes: nil) }
    /// A folder output at `path`.
    /// - Parameters:
    ///   - path: the output folder as spelled.
    ///   - writes: whether a file of a given name in the folder is one the output writes (a PEFT folder
    ///     writes `adapter_model.safetensors` and `adapter_config.json`).
    /// - Returns: the output, for ``PathConflicts/check(_:inputs:)``.
    public static func folder(_ path: String, writes: @escaping (String) -> Bool) -> Output {
      Output(path: path, writes: writes)
    }
  }

  /// Checks that no output can destroy an input: call it before anything is read or written.
  /// - Parameters:
  ///   - outputs: the run's outputs.
  ///   - inputs: every path the run reads (files or folders).
  /// - Throws: ``CheckpointError/outputIsInput(output:input:relation:)`` when an output is an input,
  ///   lies inside an input folder, or would replace a file given as an input, or when two outputs are
  ///   one path.
  /// - Complexity: O(outputs × inputs) comparisons after one `realpath` per path.
  public static func check(_ outputs: [Output], inputs: [String]) throws(CheckpointError) {
    let resolvedInputs = inputs.map { (spelled: $0, resolved: resolve($0), isFolder: fileType($0) == S_IFDIR) }
    var seen: [(spelled: String, resolved: String)] = []
    for output in outputs {
      let target = resolve(output.path)
      if let other = seen.first(where: { $0.resolved == target }) {
        throw .outputIsInput(
          output: output.path, input: other.spelled, relation: "is the same path as the other output")
      }
      seen.append((output.path, target))
      for input in resolvedInputs {
        if target == input.resolved {
          throw .outputIsInput(output: output.path, input: input.spelled, relation: "is the input")
        }
        if input.isFolder, target.hasPrefix(input.resolved == "/" ? "/" : input.resolved + "/") {
          throw .outputIsInput(output: output.path, input: input.spelled, relation: "lies inside the input folder")
        }
        if let writes = output.writes, !input.isFolder, parent(of: input.resolved) == target,
          writes(lastComponent(input.resolved))
        {
          throw .outputIsInput(output: output.path, input: input.spelled, relation: "would replace the input")
        }
      }
    }
  }

  /// Checks that no input is given twice under two spellings.
  /// - Parameter inputs: the input paths.
  /// - Throws: ``CheckpointError/duplicateInput(first:second:)`` when two inputs resolve to the same
  ///   file or folder.
  public static func checkDistinct(_ inputs: [String]) throws(CheckpointError) {
    var seen: [String: String] = [:]
    for input in inputs {
      let resolved = resolve(input)
      if let first = seen[resolved] { throw .duplicateInput(first: first, second: input) }
      seen[resolved] = input
    }
  }

  /// The absolute path the kernel would reach: the longest existing prefix through `realpath`, the rest
  /// appended with `.` and `..` applied.
  /// - Parameter path: a path, relative or absolute, existing or not.
  /// - Returns: the resolved absolute path (as spelled when even the working folder is gone).
  public static func resolve(_ path: String) -> String {
    let path = trimmingTrailingSlashes(path.isEmpty ? "." : path)
    if let real = realpath(path, nil) {
      defer { free(real) }
      return String(cString: real)
    }
    let prefix = folderPrefix(of: path)
    let folder = prefix.isEmpty ? "." : prefix == "/" ? "/" : String(prefix.dropLast())
    // Nothing left to resolve (the working folder itself is gone): the path as spelled.
    guard folder != path, path != "." else { return path }
    let base = resolve(folder)
    switch lastComponent(path) {
    case ".": return base
    case "..": return parent(of: base)
    case let name: return base == "/" ? "/" + name : base + "/" + name
    }
  }

  private static func parent(of resolved: String) -> String {
    guard let slash = resolved.lastIndex(of: "/"), slash != resolved.startIndex else { return "/" }
    return String(resolved[..<slash])
  }
}
