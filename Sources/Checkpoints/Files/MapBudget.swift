/// How many files may stay mapped at once. The kernel allows about 65,000 maps per process
/// (vm.max_map_count), and a sharded checkpoint may hold more files than that: past the budget,
/// the files that went idle first are unmapped (and mapped again when read).
final class MapBudget: Sendable {
  static let shared = MapBudget(limit: 16_384)

  private struct State {
    var limit: Int
    var mapped = 0
    /// Maps released to stay within the limit, since the start.
    var releases = 0
    /// Files with no reader, oldest first; an entry may be stale (read again, or gone).
    var idle: [Weak] = []
    var head = 0
  }

  private struct Weak { weak var file: MappedFile? }

  private let state: Locked<State>

  init(limit: Int) { state = Locked(State(limit: limit)) }

  /// The number of files mapped now, and of maps released so far to keep within the limit.
  var counts: (mapped: Int, releases: Int) { state.withLock { ($0.mapped, $0.releases) } }

  /// Sets the limit (tests use a small one); returns the previous limit.
  @discardableResult
  func setLimit(_ limit: Int) -> Int {
    state.withLock { state in
      defer { state.limit = max(1, limit) }
      return state.limit
    }
  }

  func didMap() {
    state.withLock { $0.mapped += 1 }
    trim()
  }

  func didUnmap(released: Bool = false) {
    state.withLock { state in
      state.mapped -= 1
      if released { state.releases += 1 }
    }
  }

  func becameIdle(_ file: MappedFile) {
    state.withLock { $0.idle.append(Weak(file: file)) }
    trim()
  }

  /// Releases idle maps, oldest first, until the count is within the limit or none is idle.
  private func trim() {
    while let candidate = nextCandidate() { candidate.releaseIfIdle() }
  }

  private func nextCandidate() -> MappedFile? {
    state.withLock { state in
      while state.mapped > state.limit, state.head < state.idle.count {
        let entry = state.idle[state.head]
        state.head += 1
        if state.head > 1024, state.head * 2 > state.idle.count {
          state.idle.removeFirst(state.head)
          state.head = 0
        }
        if let file = entry.file { return file }
      }
      return nil
    }
  }
}
