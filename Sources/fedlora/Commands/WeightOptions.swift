import Adapters
import ArgumentParser

/// `--weights` / `--samples`: how much each client counts (merge and inspect).
struct WeightOptions: ParsableArguments {
  @Option(help: "Client weights w1,w2,... (normalised to sum 1).")
  var weights: String?

  @Option(help: "Client sample counts n1,n2,...: weights n_u / sum n.")
  var samples: String?

  func validate() throws {
    if weights != nil, samples != nil { throw ValidationError("give --weights or --samples, not both") }
    for list in [weights, samples].compactMap({ $0 }) where Self.numbers(list) == nil {
      throw ValidationError("'\(list)' is not a comma-separated list of numbers")
    }
  }

  var spec: WeightSpec {
    weights.flatMap(Self.numbers).map(WeightSpec.weights) ?? samples.flatMap(Self.numbers).map(WeightSpec.samples) ?? .uniform
  }

  static func numbers(_ list: String) -> [Double]? {
    let values = list.split(separator: ",").map { Double($0.trimmingSpaces) }
    return values.contains(nil) || values.isEmpty ? nil : values.compactMap { $0 }
  }
}
