import Checkpoints
import Dispatch
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// A one-line progress display on stderr (bytes done, rate, time left), only on a terminal.
/// `@unchecked Sendable`: writer threads report through `handler`, and the mutable counts are
/// only touched on `lock`.
final class Progress: @unchecked Sendable {
  private let total: Int
  private let enabled: Bool
  private let lock = DispatchQueue(label: "fedlora.progress")
  private var done = 0
  private var lastDraw = 0.0
  private let start = Progress.now()

  init(total: Int, enabled: Bool) {
    self.total = total
    self.enabled = enabled && Terminal.stderrIsTTY && total > 0
  }

  /// The handler to give the writers, or nil when nothing is shown.
  var handler: ProgressHandler? {
    guard enabled else { return nil }
    return { [self] bytes in lock.sync { advance(bytes) } }
  }

  private func advance(_ bytes: Int) {
    done += bytes
    let now = Progress.now()
    guard now - lastDraw > 0.1 || done >= total else { return }
    lastDraw = now
    let elapsed = max(now - start, 1e-3)
    let rate = Double(done) / elapsed
    let left = rate > 0 ? Double(total - done) / rate : 0
    let percent = Int(100 * Double(done) / Double(total))
    Terminal.errRaw(
      "\r\(percent)%  \(NumberFormat.bytes(done)) of \(NumberFormat.bytes(total))  \(NumberFormat.bytes(Int(rate)))/s  \(Int(left.rounded()))s left   "
    )
  }

  func finish() {
    guard enabled else { return }
    Terminal.errRaw("\r\u{1B}[K")
  }

  static func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
  }
}
