import Checkpoints
import Dispatch

/// Solves modules in parallel and hands the results over in module order: at most `window`
/// modules are solved and not yet consumed (memory follows the window, not the model), the
/// consumer runs on the calling thread, one module at a time, and sees the same results in the
/// same order whatever the thread count.
enum ModuleScheduler {
  /// Modules solved ahead of the consumer: enough to keep every core busy while it writes.
  static var defaultWindow: Int { 2 * processorCount }

  /// Runs `solve` on every index in `0..<count` on worker threads and `consume` on each result
  /// in index order. The first failure in index order (of a solve, or of a consume) is thrown,
  /// once the workers in flight have stopped; no further module is started after one.
  static func run<Result: Sendable>(
    count: Int, window: Int = defaultWindow, solve: @escaping @Sendable (Int) throws(AdapterError) -> Result,
    consume: (Int, Result) throws(AdapterError) -> Void
  ) throws(AdapterError) {
    guard count > 0 else { return }
    let window = max(1, window)
    let workers = min(window, count, processorCount)
    let state = Locked(State<Result>(count: count))
    let ready = (0..<count).map { _ in DispatchSemaphore(value: 0) }
    // Made at 0 and raised: libdispatch traps on freeing a semaphore below its initial value,
    // which a run that stops early leaves it.
    let space = DispatchSemaphore(value: 0)
    for _ in 0..<window { space.signal() }
    let group = DispatchGroup()
    for _ in 0..<workers {
      DispatchQueue.global().async(group: group) {
        while true {
          space.wait()
          guard let index = state.withLock({ $0.claim() }) else {
            space.signal()
            return
          }
          let outcome: Swift.Result<Result, AdapterError>
          do throws(AdapterError) { outcome = .success(try solve(index)) } catch { outcome = .failure(error) }
          state.withLock { $0.results[index] = outcome }
          ready[index].signal()
        }
      }
    }
    var failure: AdapterError?
    for index in 0..<count {
      ready[index].wait()
      let outcome = state.withLock { state in
        defer { state.results[index] = nil }
        return state.results[index]
      }
      do throws(AdapterError) {
        guard let outcome else { preconditionFailure("module \(index) signalled without a result") }
        try consume(index, try outcome.get())
      } catch {
        failure = error
        break
      }
      space.signal()
    }
    if failure != nil {
      state.withLock { $0.stopped = true }
      for _ in 0..<workers { space.signal() }
    }
    group.wait()
    if let failure { throw failure }
  }

  private struct State<Result> {
    var results: [Swift.Result<Result, AdapterError>?]
    var next = 0
    var stopped = false

    init(count: Int) { results = Array(repeating: nil, count: count) }

    /// The next index to solve, nil once all are started or the run stopped.
    mutating func claim() -> Int? {
      guard !stopped, next < results.count else { return nil }
      defer { next += 1 }
      return next
    }
  }
}
