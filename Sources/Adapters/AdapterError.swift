import Checkpoints

/// Every way loading, checking or aggregating adapters can fail, with the context a user needs.
public enum AdapterError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A file could not be read or written (its code is the `CheckpointError`'s).
  case checkpoint(CheckpointError)
  /// `bad-config`: an `adapter_config.json` (or a format's config) with a key of the wrong type or value.
  case badConfig(path: String, message: String)
  /// `unsupported-peft-type`: a PEFT adapter that is not LoRA (IA3, prefix tuning...).
  case unsupportedPEFTType(path: String, type: String)
  /// `no-adapter-tensors`: a checkpoint holding no LoRA factors (a model, not an adapter).
  case noAdapterTensors(path: String)
  /// `unpaired-module`: a module with `A` and no `B`, or `B` and no `A`.
  case unpairedModule(path: String, module: String, missing: String)
  /// `bad-factor-shape`: factors that do not form a pair `A [r, in]`, `B [out, r]`.
  case badFactorShape(path: String, module: String, a: [Int], b: [Int])
  /// `dora-not-mergeable`: a DoRA adapter, which is not `W + s B A`.
  case doraNotMergeable(path: String)
  /// `missing-alpha`: a bare adapter with no alpha of its own, and none given.
  case missingAlpha(path: String)
  /// `module-mismatch`: a module that does not fit where it must go (a malformed bias, no base weight for it, no name in the output format).
  case moduleMismatch(client: String, module: String, message: String)
  /// A module other clients adapt and this one does not.
  case moduleMissing(client: String, module: String)
  /// A module (or a full tensor) no client has.
  case notAdapted(module: String)
  /// `shape-mismatch`: a module (or full tensor) whose shape differs from the other clients' or the base's.
  case shapeMismatch(client: String, module: String, expected: [Int], found: [Int])
  /// `bad-weights`: client weights that are missing, not one per client, negative, not finite or summing to zero.
  case badWeights(message: String)
  /// `needs-base`: a method that writes merged base weights (`exact`, `fedex`) without a base.
  case needsBase(method: String)
  /// `bad-option`: an option the method does not take, or a value it refuses.
  case badOption(message: String)
  /// `unknown-row-order`: q/k rows in llama.cpp's per-head order, and no head counts to read or write them by.
  case unknownRowOrder(path: String, writing: Bool)
  /// `cannot-carry`: something the output format cannot hold (a LoRA bias in a GGUF LoRA, an embedding in kohya...), refused rather than dropped.
  case cannotCarry(what: String, format: String)
  /// `no-base-bias`: a LoRA bias update with no bias in the base to add it to.
  case noBaseBias(path: String, module: String, tensor: String)
  /// `config-rank-mismatch`: a config rank the module's tensors do not have (a problem of the adapter; a merge refuses it).
  case configRankMismatch(path: String, module: String, configRank: Int, tensorRank: Int)
  /// `no-common-module`: clients that adapt no module in common.
  case noCommonModule(message: String)
  /// `different-base-models`: clients whose configs name different base models.
  case differentBaseModels(message: String)
  /// `non-finite`: a client's factors holding NaN or infinity.
  case nonFinite(client: String, module: String)
  /// The linear algebra of a module gave no finite result (a LAPACK routine failed).
  case numericalFailure(module: String)
  /// BLAS/LAPACK, loaded when a computation first needs them, could not be loaded.
  case linearAlgebraUnavailable(reason: String)
  /// A tensor of a LoRA variant that is not `W + s B A` (LoHa, LoKr, DoRA, an MLX MoE switch
  /// layer), or a key of a format that fedlora cannot place: refused by name, never misread.
  case unsupportedVariant(path: String, tensor: String, variant: String)
  /// Keys of two adapter formats in one file.
  case mixedFormats(path: String, first: String, firstFormat: String, second: String, secondFormat: String)
  /// An `alpha` tensor (kohya, diffusers) that is not one finite number >= 0.
  case badAlpha(path: String, tensor: String, found: String)
  /// A factor whose shape does not fit its pair, its kernel or its config (kohya conv LoRA,
  /// MLX's transposed factors), named by tensor.
  case badFactor(path: String, module: String, tensor: String, message: String)
  /// A format whose files carry no alpha (torchtune, MLX without its config), and none given.
  case formatNeedsAlpha(path: String, format: String, reason: String)
  /// A torchtune adapter's q/k `lora_b` rows (in torchtune's per-head order) without head counts.
  case formatNeedsHeads(path: String, format: String)
  /// Names that map to the model's modules only with a value of the base model's config (a
  /// kohya SDXL file's sgm block names: the UNet's `layers_per_block`), which nothing gave.
  case formatNeedsConfig(path: String, tensor: String, reason: String)

  /// The module a per-module error names, if any.
  public var module: String? {
    switch self {
    case let .unpairedModule(_, module, _), let .badFactorShape(_, module, _, _),
      let .configRankMismatch(_, module, _, _),
      let .moduleMismatch(_, module, _), let .shapeMismatch(_, module, _, _), let .nonFinite(_, module),
      let .moduleMissing(_, module), let .notAdapted(module), let .numericalFailure(module),
      let .badFactor(_, module, _, _):
      module
    default: nil
    }
  }

  /// A stable, machine-readable name for the case (used in --json output).
  public var code: String {
    switch self {
    case let .checkpoint(error): error.code
    case .badConfig: "bad-config"
    case .unsupportedPEFTType: "unsupported-peft-type"
    case .noAdapterTensors: "no-adapter-tensors"
    case .unpairedModule: "unpaired-module"
    case .badFactorShape: "bad-factor-shape"
    case .doraNotMergeable: "dora-not-mergeable"
    case .missingAlpha: "missing-alpha"
    case .moduleMismatch: "module-mismatch"
    case .moduleMissing: "module-missing"
    case .notAdapted: "not-adapted"
    case .shapeMismatch: "shape-mismatch"
    case .badWeights: "bad-weights"
    case .needsBase: "needs-base"
    case .badOption: "bad-option"
    case .unknownRowOrder: "unknown-row-order"
    case .cannotCarry: "cannot-carry"
    case .noBaseBias: "no-base-bias"
    case .configRankMismatch: "config-rank-mismatch"
    case .noCommonModule: "no-common-module"
    case .differentBaseModels: "different-base-models"
    case .nonFinite: "non-finite"
    case .numericalFailure: "numerical-failure"
    case .linearAlgebraUnavailable: "blas-unavailable"
    case .unsupportedVariant: "unsupported-lora-variant"
    case .mixedFormats: "mixed-formats"
    case .badAlpha: "bad-alpha"
    case .badFactor: "bad-factor-shape"
    case .formatNeedsAlpha: "missing-alpha"
    case .formatNeedsHeads: "unknown-row-order"
    case .formatNeedsConfig: "needs-base-config"
    }
  }

  /// The message for the user, naming the file, client or module concerned.
  public var description: String {
    switch self {
    case let .checkpoint(error): error.description
    case let .badConfig(path, message): "\(path): \(message)"
    case let .unsupportedPEFTType(path, type):
      "\(path): PEFT type '\(type)' is not LoRA; fedlora can list it but not merge it"
    case let .noAdapterTensors(path): "\(path): no LoRA tensors (lora_A/lora_B or .lora_a/.lora_b) found"
    case let .unpairedModule(path, module, missing): "\(path): module '\(module)' has no \(missing) tensor"
    case let .badFactorShape(path, module, a, b):
      "\(path): module '\(module)': A \(a) and B \(b) do not form a LoRA pair (A [r, in], B [out, r], every dimension 1 to 2^31-1)"
    case let .doraNotMergeable(path):
      "\(path): DoRA adapters (use_dora) are not W + sBA and cannot be merged; inspect lists them"
    case let .missingAlpha(path):
      "\(path): a bare adapter without adapter_config.json or an alpha of its own: its scale is unknown"
    case let .moduleMismatch(client, module, message): "\(client): module '\(module)': \(message)"
    case let .moduleMissing(client, module):
      "\(client): module '\(module)' is adapted by other clients but not by this one"
    case let .notAdapted(module): "no client has '\(module)'"
    case let .shapeMismatch(client, module, expected, found):
      "\(client): module '\(module)' has update shape \(found), other clients have \(expected)"
    case let .badWeights(message): "client weights: \(message)"
    case let .needsBase(method): "method '\(method)' writes merged base weights: give a base checkpoint"
    case let .badOption(message): message
    case let .unknownRowOrder(path, writing):
      writing
        ? "\(path): a llama.cpp GGUF LoRA holds q/k lora_b rows in llama.cpp's per-head order, which needs the base model's head counts, and none is known"
        : "\(path): a llama GGUF LoRA with q/k modules from another tool holds their lora_b rows in llama.cpp's per-head order, which needs the base model's head counts, and none is known"
    case let .cannotCarry(what, format):
      "\(what): a \(format) cannot hold it, and fedlora does not drop it; choose another output format"
    case let .noBaseBias(path, module, tensor):
      "\(path): module '\(module)' has a LoRA bias (lora_B.bias) but the base has no \(tensor) to add it to (PEFT's merge_and_unload fails on it too)"
    case let .configRankMismatch(path, module, configRank, tensorRank):
      "\(path): module '\(module)': adapter_config.json gives rank \(configRank) (r or rank_pattern), its tensors have rank \(tensorRank); PEFT would refuse to load it"
    case let .noCommonModule(message): "clients cannot belong to one model: \(message)"
    case let .differentBaseModels(message): "clients name different base models: \(message)"
    case let .nonFinite(client, module): "\(client): module '\(module)' holds NaN or infinite values"
    case let .numericalFailure(module):
      "module '\(module)': the linear algebra gave no finite result (a LAPACK routine failed on its factors); nothing is written"
    case let .linearAlgebraUnavailable(reason): reason
    case let .unsupportedVariant(path, tensor, variant):
      "\(path): tensor '\(tensor)': \(variant); fedlora reads plain LoRA (W + s B A) only and refuses it rather than misread it"
    case let .mixedFormats(path, first, firstFormat, second, secondFormat):
      "\(path): keys of two adapter formats in one file: '\(first)' is \(firstFormat), '\(second)' is \(secondFormat)"
    case let .badAlpha(path, tensor, found):
      "\(path): tensor '\(tensor)': alpha must be one finite number >= 0, found \(found)"
    case let .badFactor(path, module, tensor, message): "\(path): module '\(module)': tensor '\(tensor)': \(message)"
    case let .formatNeedsAlpha(path, format, reason):
      "\(path): a \(format) adapter: \(reason); give --alpha (the alpha it was trained with)"
    case let .formatNeedsHeads(path, format):
      "\(path): a \(format) adapter holds its q/k lora_b rows in \(format)'s per-head order, which needs the base model's head counts: give --base-config CONFIG.json (or put the model's config.json beside the adapter)"
    case let .formatNeedsConfig(path, tensor, reason): "\(path): tensor '\(tensor)': \(reason)"
    }
  }
}

extension AdapterError {
  /// Runs `body`, wrapping checkpoint errors.
  static func wrap<T>(_ body: () throws(CheckpointError) -> T) throws(AdapterError) -> T {
    do { return try body() } catch { throw .checkpoint(error) }
  }

  /// Runs a writer of Checkpoints whose tensors this module computes: what it throws is its
  /// own `CheckpointError` or an `AdapterError` of a tensor's computation, each kept as it is.
  static func writing<T>(_ body: () throws -> T) throws(AdapterError) -> T {
    do { return try body() } catch let error as AdapterError { throw error } catch let error as CheckpointError {
      throw .checkpoint(error)
    } catch {
      // Unreachable: the writers throw nothing else, and every tensor here is computed by this module.
      throw .checkpoint(.writeFailed(path: "", message: String(describing: error)))
    }
  }
}
