import ArgumentParser
import Checkpoints
import Yams

/// A merge described in YAML (`merge --recipe FILE.yaml`), as mergekit users describe theirs:
/// the merge's options as keys, the clients as a list. Paths are relative to the recipe's
/// folder (a Hugging Face id stays an id). Every error names the key and its line.
///
/// ```yaml
/// method: flora-na
/// clients:
///   - {path: clients/a, samples: 100}
///   - {path: clients/b, samples: 300}
/// output: merged
/// ```
///
/// A client may also be a plain path (`- clients/a`) when no client has a weight.
struct MergeRecipe {
  struct Client {
    let path: String
    let weight: Double?
    let samples: Double?
  }

  static let keys = [
    "method", "clients", "output", "base", "format", "dtype", "rank", "scope", "max_iterations", "alpha",
    "allow_missing", "no_errors", "keep_weights", "base_config",
  ]

  /// The recipe file's text, recorded in the output's provenance.
  let text: String
  var method: String?
  var clients: [Client] = []
  var output: String?
  var base: String?
  var format: String?
  var dtype: String?
  var rank: Int?
  var scope: String?
  var maxIterations: Int?
  var alpha: Double?
  var allowMissing: Bool?
  var noErrors: Bool?
  var keepWeights: Bool?
  var baseConfig: String?

  init(path: String) throws {
    text = String(decoding: try MappedFile.contents(of: path), as: UTF8.self)
    let root: Node?
    do { root = try Yams.compose(yaml: text) } catch { throw ValidationError("\(path): not YAML: \(error)") }
    let read = Values(path: path)
    guard case let .mapping(mapping)? = root else {
      throw read.fail(root, "a recipe is a mapping of merge options (\(Self.keys.joined(separator: ", ")))")
    }
    var seen = Set<String>()
    for (keyNode, value) in mapping {
      guard let key = keyNode.string else { throw read.fail(keyNode, "a key that is not a string") }
      guard seen.insert(key).inserted else { throw read.fail(keyNode, "'\(key)' is given twice") }
      switch key {
      case "method": method = try read.string(value, key)
      case "output": output = read.located(try read.string(value, key))
      case "base": base = read.located(try read.string(value, key))
      case "format": format = try read.string(value, key)
      case "dtype": dtype = try read.string(value, key)
      case "rank": rank = try read.integer(value, key)
      case "scope": scope = try read.string(value, key)
      case "max_iterations": maxIterations = try read.integer(value, key)
      case "alpha": alpha = try read.number(value, key)
      case "allow_missing": allowMissing = try read.flag(value, key)
      case "no_errors": noErrors = try read.flag(value, key)
      case "keep_weights": keepWeights = try read.flag(value, key)
      case "base_config": baseConfig = read.located(try read.string(value, key))
      case "clients":
        guard case let .sequence(entries) = value, !entries.isEmpty else {
          throw read.fail(value, "'clients' must be a list of paths, {path, weight} or {path, samples}")
        }
        for entry in entries { clients.append(try read.client(entry)) }
      default: throw read.fail(keyNode, "unknown key '\(key)' (the keys are \(Self.keys.joined(separator: ", ")))")
      }
    }
    guard !clients.isEmpty else { throw read.fail(root, "no 'clients'") }
    let weighted = clients.filter { $0.weight != nil }.count
    let counted = clients.filter { $0.samples != nil }.count
    guard weighted == 0 || weighted == clients.count, counted == 0 || counted == clients.count,
      weighted == 0 || counted == 0
    else {
      throw read.fail(root, "give every client a 'weight', or every client 'samples', or none of them")
    }
  }

  /// Reads the values of one recipe's nodes: each error names the recipe and the node's line,
  /// each path is located relative to the recipe's folder.
  private struct Values {
    let path: String
    let folder: String

    init(path: String) {
      self.path = path
      folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
    }

    func fail(_ node: Node?, _ message: String) -> ValidationError {
      ValidationError("\(path)\(node?.mark.map { ":\($0.line)" } ?? ""): \(message)")
    }

    /// A path from the recipe, relative to its folder unless absolute (or a cached Hub id).
    func located(_ value: String) -> String {
      guard !value.hasPrefix("/") else { return value }
      let joined = folder + "/" + value
      if !Checkpoint.exists(joined), (try? HubCache.snapshot(for: value)) != nil { return value }
      return joined
    }

    func string(_ node: Node, _ key: String) throws -> String {
      guard case .scalar = node, let value = node.string, !value.isEmpty else {
        throw fail(node, "'\(key)' must be a string")
      }
      return value
    }

    func flag(_ node: Node, _ key: String) throws -> Bool {
      guard let value = node.bool else { throw fail(node, "'\(key)' must be true or false") }
      return value
    }

    func integer(_ node: Node, _ key: String) throws -> Int {
      guard let value = node.int else { throw fail(node, "'\(key)' must be an integer") }
      return value
    }

    func number(_ node: Node, _ key: String) throws -> Double {
      guard let value = node.int.map(Double.init) ?? node.float, value.isFinite else {
        throw fail(node, "'\(key)' must be a number")
      }
      return value
    }

    /// One entry of `clients`: a plain path, or a mapping of `path` and at most one of
    /// `weight` and `samples`.
    func client(_ entry: Node) throws -> Client {
      if case .scalar = entry {
        return Client(path: located(try string(entry, "clients")), weight: nil, samples: nil)
      }
      guard case let .mapping(fields) = entry else {
        throw fail(entry, "a client must be a path, {path, weight} or {path, samples}")
      }
      var (clientPath, weight, samples): (String?, Double?, Double?) = (nil, nil, nil)
      for (field, fieldValue) in fields {
        switch field.string {
        case "path": clientPath = located(try string(fieldValue, "path"))
        case "weight": weight = try number(fieldValue, "weight")
        case "samples": samples = try number(fieldValue, "samples")
        default: throw fail(field, "unknown client key '\(field.string ?? "")' (path, weight or samples)")
        }
      }
      guard let clientPath else { throw fail(entry, "a client without 'path'") }
      guard weight == nil || samples == nil else {
        throw fail(entry, "a client has 'weight' or 'samples', not both")
      }
      return Client(path: clientPath, weight: weight, samples: samples)
    }
  }

  /// The comma-separated `--weights` or `--samples` the clients' values make.
  var weights: String? {
    clients.first?.weight == nil ? nil : clients.compactMap(\.weight).map { "\($0)" }.joined(separator: ",")
  }
  var samples: String? {
    clients.first?.samples == nil ? nil : clients.compactMap(\.samples).map { "\($0)" }.joined(separator: ",")
  }
}
