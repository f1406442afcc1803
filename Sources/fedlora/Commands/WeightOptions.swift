import Adapters
import ArgumentParser

/// `--weights` / `--samples`: how much each client counts (merge and inspect).
struct WeightOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: "Client weights w1,w2,... (non-negative; normalised to sum 1).")
  var weights: String?

  @Option(parsing: .unconditional, help: "Client sample counts n1,n2,...: weights n_u / sum n.")
  var samples: String?

  func validate() throws {
    if weights != nil, samples != nil { throw ValidationError("give --weights or --samples, not both") }
    for (flag, list) in [("--weights", weights), ("--samples", samples)] {
      guard let list else { continue }
      guard let values = Self.numbers(list) else {
        throw ValidationError("\(flag) '\(list)' is not a comma-separated list of numbers")
      }
      if values.contains(where: { $0 < 0 }) {
        throw ValidationError(
          "\(flag) '\(list)' has a negative value: a client's update cannot count less than nothing (leave the client out instead)"
        )
      }
      if values.allSatisfy({ $0 == 0 }) {
        throw ValidationError("\(flag) '\(list)' is all zeros: some client must count")
      }
    }
  }

  /// Checks that one value is given per client (argv says how many clients there are).
  func check(clients: Int) throws {
    guard let list = weights ?? samples, let count = Self.numbers(list)?.count, count != clients else { return }
    throw ValidationError("\(weights != nil ? "--weights" : "--samples") has \(count) values for \(clients) clients")
  }

  var spec: WeightSpec {
    weights.flatMap(Self.numbers).map(WeightSpec.weights) ?? samples.flatMap(Self.numbers).map(WeightSpec.samples)
      ?? .uniform
  }

  /// The finite numbers of a comma-separated list; nil if any item is not one.
  static func numbers(_ list: String) -> [Double]? {
    let items = list.split(separator: ",", omittingEmptySubsequences: false)
    let values = items.compactMap { Double($0.trimmingSpaces) }.filter(\.isFinite)
    return values.count == items.count ? values : nil
  }
}
