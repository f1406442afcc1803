import Checkpoints

/// A PEFT `adapter_config.json`: what fedlora uses of it, and the whole JSON so unknown keys
/// survive a merge.
public struct AdapterConfig: Sendable {
  /// The safetensors metadata key under which a bare adapter file carries its config.
  public static let metadataKey = "fedlora.adapter_config"

  public let raw: JSON
  public let peftType: String
  public let rank: Int
  public let alpha: Double
  public let useRSLoRA: Bool
  public let useDoRA: Bool
  public let fanInFanOut: Bool
  /// Module name or regular expression -> rank / alpha, in file order (the first match wins).
  public let rankPattern: [(pattern: String, value: Int)]
  public let alphaPattern: [(pattern: String, value: Double)]
  public let targetModules: [String]
  public let baseModel: String?

  public init(json: JSON, path: String) throws(AdapterError) {
    guard json.objectValue != nil else { throw .badConfig(path: path, message: "not a JSON object") }
    raw = json
    peftType = json["peft_type"]?.stringValue ?? "LORA"
    guard let rank = json["r"]?.intValue, rank > 0 else { throw .badConfig(path: path, message: "'r' must be a positive integer") }
    self.rank = rank
    alpha = json["lora_alpha"]?.doubleValue ?? Double(rank)
    useRSLoRA = json["use_rslora"]?.boolValue ?? false
    useDoRA = json["use_dora"]?.boolValue ?? false
    fanInFanOut = json["fan_in_fan_out"]?.boolValue ?? false
    rankPattern = (json["rank_pattern"]?.objectValue ?? []).compactMap { entry in entry.value.intValue.map { (entry.key, $0) } }
    alphaPattern = (json["alpha_pattern"]?.objectValue ?? []).compactMap { entry in entry.value.doubleValue.map { (entry.key, $0) } }
    switch json["target_modules"] {
    case let .string(single)?: targetModules = [single]
    case let .array(list)?: targetModules = list.compactMap(\.stringValue)
    default: targetModules = []
    }
    baseModel = json["base_model_name_or_path"]?.stringValue
  }

  /// The rank and alpha of `module` after `rank_pattern` / `alpha_pattern`, matched as PEFT does:
  /// the pattern must match a whole dotted suffix of the module name.
  public func rankAndAlpha(for module: String) -> (rank: Int, alpha: Double) {
    let rank = rankPattern.first { Self.matches($0.pattern, module) }?.value ?? self.rank
    let alpha = alphaPattern.first { Self.matches($0.pattern, module) }?.value ?? self.alpha
    return (rank, alpha)
  }

  /// The rank written as `r` when modules differ: the most frequent one (the smallest on a tie);
  /// the others go to `rank_pattern`.
  public static func commonRank(_ ranks: [Int]) -> Int {
    Dictionary(grouping: ranks, by: { $0 }).max { ($0.value.count, -$0.key) < ($1.value.count, -$1.key) }?.key ?? 1
  }

  /// `target_modules` for adapted modules: the last component of each name, sorted.
  public static func targets(of moduleNames: [String]) -> [String] {
    Set(moduleNames.map { String($0.split(separator: ".").last ?? "") }).sorted()
  }

  /// PEFT's rule: `re.match(rf"(.*\.)?({key})$", name)`.
  static func matches(_ pattern: String, _ module: String) -> Bool {
    guard let regex = try? Regex("^(.*\\.)?(\(pattern))$") else { return pattern == module }
    return (try? regex.wholeMatch(in: module)) != nil
  }
}
