import Dispatch
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// `transform` applied to every element on all cores; results in input order, the failure
/// with the lowest index rethrown (so the error does not depend on scheduling).
package func parallelMap<T: Sendable, R, E: Error>(
  _ items: [T], _ transform: @Sendable (T) throws(E) -> R
) throws(E) -> [R] {
  let box = Locked<(results: [R?], failure: (index: Int, error: E)?)>(
    (Array(repeating: nil, count: items.count), nil))
  DispatchQueue.concurrentPerform(iterations: items.count) { index in
    do throws(E) {
      let result = try transform(items[index])
      box.withLock { $0.results[index] = result }
    } catch {
      box.withLock { state in
        if let existing = state.failure, existing.index <= index { return }
        state.failure = (index, error)
      }
    }
  }
  let (results, failure) = box.withLock { ($0.results, $0.failure) }
  if let failure { throw failure.error }
  return results.compactMap { $0 }
}

/// The processors online (at least 1): how many threads computing work keeps busy.
package var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
