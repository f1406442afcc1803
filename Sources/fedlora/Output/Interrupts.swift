import Adapters
import Checkpoints
import Dispatch
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// SIGINT and SIGTERM remove the run's temporaries, then end it with 130 / 143.
enum Interrupts {
  nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

  static func install() {
    // A file size limit (ulimit -f) is a write error to report, not a kill.
    signal(SIGXFSZ, SIG_IGN)
    for (number, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        Temporaries.removeAll()
        Terminal.err("fedlora: \(number == SIGINT ? "interrupted" : "terminated"): its temporaries removed")
        _exit(status)
      }
      source.resume()
      sources.append(source)
    }
  }
}
