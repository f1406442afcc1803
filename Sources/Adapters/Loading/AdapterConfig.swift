import Checkpoints

/// A PEFT `adapter_config.json`: what fedlora uses of it, and the whole JSON so unknown keys
/// survive a merge.
public struct AdapterConfig: Sendable {
  /// The safetensors metadata key under which a bare adapter file carries its config.
  public static let metadataKey = "fedlora.adapter_config"

  /// The whole JSON, unknown keys included.
  public let raw: JSON
  /// `peft_type` (`LORA` when absent).
  public let peftType: String
  /// `r`, the rank of modules no `rank_pattern` entry matches.
  public let rank: Int
  /// `lora_alpha` (`r` when absent), the alpha of modules no `alpha_pattern` entry matches.
  public let alpha: Double
  /// `use_rslora`: the scale is `alpha / sqrt(r)` instead of `alpha / r`.
  public let useRSLoRA: Bool
  /// `use_dora`: a DoRA adapter, which cannot be merged.
  public let useDoRA: Bool
  /// `fan_in_fan_out`: the base weights are stored `[in, out]` (GPT-2 Conv1D).
  public let fanInFanOut: Bool
  /// Module name or regular expression -> rank / alpha, in file order (the first match wins).
  public let rankPattern: [(pattern: String, value: Int)]
  /// `alpha_pattern`, in file order.
  public let alphaPattern: [(pattern: String, value: Double)]
  /// The pattern keys compiled (linear-time matching, see ``ModulePattern``).
  private let compiled: [String: ModulePattern]
  /// `target_modules` (a single string as one entry; empty when absent).
  public let targetModules: [String]
  /// `base_model_name_or_path`; nil when absent or null.
  public let baseModel: String?

  /// Reads the config, refusing any key fedlora uses whose value has the wrong type (PEFT
  /// would fail on it or compute another scale).
  /// - Parameters:
  ///   - json: the parsed `adapter_config.json` (or the config a bare safetensors adapter of fedlora's
  ///     carries).
  ///   - path: the file named in errors.
  /// - Throws: ``AdapterError/badConfig(path:message:)`` naming the key and the type expected (`r` not
  ///   a positive integer, `lora_alpha` negative, a `rank_pattern` key that cannot be matched...).
  /// - Complexity: O(config size); each pattern key is compiled once (at most 1,000 characters, 20,000
  ///   states).
  public init(json: JSON, path: String) throws(AdapterError) {
    guard json.objectValue != nil else { throw .badConfig(path: path, message: "not a JSON object") }
    func fail(_ key: String, _ expected: String) -> AdapterError {
      .badConfig(path: path, message: "'\(key)' must be \(expected)")
    }
    func present(_ key: String) -> JSON? { json[key].flatMap { $0 == .null ? nil : $0 } }
    func flag(_ key: String) throws(AdapterError) -> Bool {
      guard let value = present(key) else { return false }
      guard let bool = value.boolValue else { throw fail(key, "true or false") }
      return bool
    }
    raw = json
    guard let type = present("peft_type").map({ $0.stringValue }) ?? "LORA" else { throw fail("peft_type", "a string") }
    peftType = type
    guard let rank = json["r"]?.intValue, rank > 0 else { throw fail("r", "a positive integer") }
    self.rank = rank
    guard let alpha = present("lora_alpha").map({ $0.doubleValue }) ?? Double(rank), alpha.isFinite, alpha >= 0 else {
      throw fail("lora_alpha", "a non-negative number")
    }
    self.alpha = alpha
    useRSLoRA = try flag("use_rslora")
    useDoRA = try flag("use_dora")
    fanInFanOut = try flag("fan_in_fan_out")
    var ranks: [(pattern: String, value: Int)] = []
    for entry in try Self.object(present("rank_pattern"), key: "rank_pattern", path: path) {
      guard let value = entry.value.intValue, value > 0 else {
        throw fail("rank_pattern['\(entry.key)']", "a positive integer")
      }
      ranks.append((entry.key, value))
    }
    rankPattern = ranks
    var alphas: [(pattern: String, value: Double)] = []
    for entry in try Self.object(present("alpha_pattern"), key: "alpha_pattern", path: path) {
      guard let value = entry.value.doubleValue, value.isFinite, value >= 0 else {
        throw fail("alpha_pattern['\(entry.key)']", "a non-negative number")
      }
      alphas.append((entry.key, value))
    }
    alphaPattern = alphas
    var compiled: [String: ModulePattern] = [:]
    for key in ranks.map(\.pattern) + alphas.map(\.pattern) where compiled[key] == nil {
      do { compiled[key] = try ModulePattern(key) } catch {
        throw .badConfig(path: path, message: "pattern key '\(key)' cannot be matched: \(error.message)")
      }
    }
    self.compiled = compiled
    switch present("target_modules") {
    case nil: targetModules = []
    case let .string(single)?: targetModules = [single]
    case let .array(list)?:
      targetModules = list.compactMap(\.stringValue)
      guard targetModules.count == list.count else { throw fail("target_modules", "a string or a list of strings") }
    default: throw fail("target_modules", "a string or a list of strings")
    }
    let base = present("base_model_name_or_path")
    guard base == nil || base?.stringValue != nil else { throw fail("base_model_name_or_path", "a string") }
    baseModel = base?.stringValue
  }

  /// A pattern object (`rank_pattern`, `alpha_pattern`); null or absent is empty.
  private static func object(_ value: JSON?, key: String, path: String) throws(AdapterError) -> [(
    key: String, value: JSON
  )] {
    guard let value else { return [] }
    guard let entries = value.objectValue else { throw .badConfig(path: path, message: "'\(key)' must be an object") }
    return entries
  }

  /// The rank and alpha of `module` after `rank_pattern` / `alpha_pattern`, matched as PEFT does:
  /// the pattern must match a whole dotted suffix of the module name.
  /// - Parameter module: the module's name.
  /// - Returns: its rank and alpha: the first matching pattern's, else `r` and `lora_alpha`.
  /// - Complexity: O(patterns × name length × pattern length) (Thompson NFA: no backtracking).
  public func rankAndAlpha(for module: String) -> (rank: Int, alpha: Double) {
    let rank = rankPattern.first { compiled[$0.pattern]?.matches(module) == true }?.value ?? self.rank
    let alpha = alphaPattern.first { compiled[$0.pattern]?.matches(module) == true }?.value ?? self.alpha
    return (rank, alpha)
  }

  /// The alpha of `module` and the scale it gives a factor pair of `rank`, as PEFT applies it:
  /// `alpha / rank`, or `alpha / sqrt(rank)` under `use_rslora`.
  /// - Parameters:
  ///   - module: the module's name, as `rankAndAlpha(for:)` matches it.
  ///   - rank: the rank of the module's factors as stored.
  /// - Returns: the module's alpha and scale.
  public func alphaAndScale(for module: String, rank: Int) -> (alpha: Double, scale: Double) {
    let alpha = rankAndAlpha(for: module).alpha
    return (alpha, useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
  }

  /// The rank written as `r` when modules differ: the most frequent one (the smallest on a tie);
  /// the others go to `rank_pattern`.
  /// - Parameter ranks: every module's rank.
  /// - Returns: the rank for `r` (1 without modules).
  public static func commonRank(_ ranks: [Int]) -> Int {
    Dictionary(grouping: ranks, by: { $0 }).max { ($0.value.count, -$0.key) < ($1.value.count, -$1.key) }?.key ?? 1
  }

  /// `target_modules` for adapted modules: the last component of each name (`q_proj`), sorted and
  /// unique.
  /// - Parameter moduleNames: the modules' names.
  /// - Returns: the target module names.
  public static func targets(of moduleNames: [String]) -> [String] {
    Set(moduleNames.map { String($0.split(separator: ".").last ?? "") }).sorted()
  }

}
