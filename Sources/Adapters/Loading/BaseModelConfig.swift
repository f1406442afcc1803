import Checkpoints

/// What a base model's config (`--base-config`) says that some adapter layouts need to be read
/// or written exactly, beyond a llama's head counts (`LlamaGGUF.heads(configAt:)`):
/// a diffusers UNet's `layers_per_block` (`unet/config.json`), with which diffusers maps
/// sd-scripts' SDXL sgm block names (`input_blocks_4_1_...`), and a transformers model's
/// `num_hidden_layers` (`config.json`), against which MLX-LM's `num_layers` counts the last layers.
public struct BaseModelConfig: Sendable, Equatable {
  /// The config file, named in messages.
  public let path: String
  /// A diffusers UNet's `layers_per_block` (one number for every block).
  public let layersPerBlock: Int?
  /// A transformers model's `num_hidden_layers`.
  public let layerCount: Int?

  /// A config given by value (a library caller that knows the model).
  /// - Parameters:
  ///   - path: what messages call the config.
  ///   - layersPerBlock: a diffusers UNet's `layers_per_block`.
  ///   - layerCount: a transformers model's `num_hidden_layers`.
  public init(path: String, layersPerBlock: Int? = nil, layerCount: Int? = nil) {
    self.path = path
    self.layersPerBlock = layersPerBlock
    self.layerCount = layerCount
  }

  /// The values of a parsed config; keys it does not hold stay nil.
  /// - Parameters:
  ///   - json: the parsed `config.json`.
  ///   - path: the file, named in messages.
  /// - Throws: ``AdapterError`` `bad-config`, naming the key, when `layers_per_block` or
  ///   `num_hidden_layers` is there but is not a whole number >= 1.
  public init(json: JSON, path: String) throws(AdapterError) {
    self.path = path
    func fail(_ key: String, _ found: JSON, _ expected: String) -> AdapterError {
      .badConfig(path: path, message: "'\(key)' is \(found.compactText): \(expected)")
    }
    switch json["layers_per_block"] {
    case nil, .null?: layersPerBlock = nil
    case let value?:
      guard let number = value.intValue, number >= 1, number <= 1000 else {
        throw fail(
          "layers_per_block", value,
          value.arrayValue != nil
            ? "one number per block, which diffusers' sgm block mapping cannot use either (it takes one number)"
            : "expected a whole number >= 1")
      }
      layersPerBlock = number
    }
    switch json["num_hidden_layers"] {
    case nil, .null?: layerCount = nil
    case let value?:
      guard let number = value.intValue, number >= 1, number <= 1_000_000 else {
        throw fail("num_hidden_layers", value, "expected a whole number >= 1")
      }
      layerCount = number
    }
  }

  /// The config at `path`.
  /// - Parameter path: a diffusers `unet/config.json` or a transformers `config.json`.
  /// - Returns: what it says of the layouts above.
  /// - Throws: ``AdapterError`` `bad-config` (not a JSON object, a bad value) and
  ///   ``AdapterError/checkpoint(_:)`` when the file cannot be read.
  /// - Complexity: O(file bytes).
  public static func read(_ path: String) throws(AdapterError) -> BaseModelConfig {
    let json = try AdapterError.wrap { () throws(CheckpointError) in
      try JSON.parse(MappedFile.contents(of: path), path: path)
    }
    guard json.objectValue != nil else { throw .badConfig(path: path, message: "not a JSON object") }
    return try BaseModelConfig(json: json, path: path)
  }
}
