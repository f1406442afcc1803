import Dispatch

/// `transform` applied to every element on all cores; results in input order, the failure
/// with the lowest index rethrown.
public func parallelMap<T, R>(_ items: [T], _ transform: @Sendable (T) throws -> R) throws -> [R] where T: Sendable {
  let box = ParallelResults<R>(items.count)
  DispatchQueue.concurrentPerform(iterations: items.count) { index in
    do {
      let result = try transform(items[index])
      box.lock.sync { box.results[index] = result }
    } catch {
      box.lock.sync {
        if let existing = box.failure, existing.index <= index { return }
        box.failure = (index, error)
      }
    }
  }
  if let failure = box.failure { throw failure.error }
  return box.results.compactMap { $0 }
}

final class ParallelResults<R>: @unchecked Sendable {
  let lock = DispatchQueue(label: "fedlora.parallel-map")
  var results: [R?]
  var failure: (index: Int, error: any Error)?
  init(_ count: Int) { results = Array(repeating: nil, count: count) }
}
