import Adapters
import ArgumentParser

extension MergeCommand {
  /// This command with the recipe's options filled in; an option both give is a usage error.
  func applying(_ recipe: MergeRecipe) throws -> MergeCommand {
    let both = [
      ("CLIENT arguments", "clients", !clients.isEmpty), ("--output", "output", output != nil && recipe.output != nil),
      ("--method", "method", method != nil && recipe.method != nil),
      ("--base", "base", base != nil && recipe.base != nil),
      ("--format", "format", format != nil && recipe.format != nil),
      ("--dtype", "dtype", dtype != nil && recipe.dtype != nil),
      ("--rank", "rank", rank != nil && recipe.rank != nil), ("--scope", "scope", scope != nil && recipe.scope != nil),
      ("--max-iterations", "max_iterations", maxIterations != nil && recipe.maxIterations != nil),
      ("--alpha", "alpha", alpha != nil && recipe.alpha != nil),
      (
        "--weights/--samples", "clients' weights",
        (weighting.weights != nil || weighting.samples != nil) && (recipe.weights != nil || recipe.samples != nil)
      ),
      ("--allow-missing", "allow_missing", allowMissing && recipe.allowMissing != nil),
      ("--no-errors", "no_errors", noErrors && recipe.noErrors != nil),
      ("--keep-weights", "keep_weights", keepWeights && recipe.keepWeights != nil),
      ("--base-config", "base_config", llama.baseConfig != nil && recipe.baseConfig != nil),
    ]
    if let (flag, key, _) = both.first(where: { $0.2 }) {
      throw ValidationError("\(flag) given both here and in the recipe (\(key)): give each option in one place")
    }
    var command = self
    command.clients = recipe.clients.map(\.path)
    command.output = output ?? recipe.output
    command.method = method ?? recipe.method
    command.base = base ?? recipe.base
    if let format = recipe.format {
      guard let parsed = AdapterFormat(rawValue: format) else {
        throw ValidationError(
          "recipe: format '\(format)' is not \(AdapterFormat.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      command.format = parsed
    }
    if let dtype = recipe.dtype {
      guard let parsed = OutputDType(rawValue: dtype) else {
        throw ValidationError("recipe: dtype '\(dtype)' is not f32, f16 or bf16")
      }
      command.dtype = parsed
    }
    if let scope = recipe.scope {
      guard let parsed = Scope(rawValue: scope) else {
        throw ValidationError("recipe: scope '\(scope)' is not layer or model")
      }
      command.scope = parsed
    }
    command.rank = rank ?? recipe.rank
    command.maxIterations = maxIterations ?? recipe.maxIterations
    command.alpha = alpha ?? recipe.alpha
    command.weighting.weights = weighting.weights ?? recipe.weights
    command.weighting.samples = weighting.samples ?? recipe.samples
    command.allowMissing = allowMissing || recipe.allowMissing == true
    command.noErrors = noErrors || recipe.noErrors == true
    command.keepWeights = keepWeights || recipe.keepWeights == true
    command.llama.baseConfig = llama.baseConfig ?? recipe.baseConfig
    return command
  }
}
