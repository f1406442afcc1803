// fedlora-bench: micro-benchmarks that print figures, each against a baseline measured in the
// same run (a ratio means more than a time on a noisy machine).
//
//   swift run -c release fedlora-bench conversions [MB]
#if canImport(Glibc)
  import Glibc
#endif
import Checkpoints

func now() -> Double {
  var time = timespec()
  clock_gettime(CLOCK_MONOTONIC, &time)
  return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// Best of `repeats` timings of `body`, in seconds.
func best(_ repeats: Int = 5, _ body: () -> Void) -> Double {
  var fastest = Double.infinity
  for _ in 0..<repeats {
    let start = now()
    body()
    fastest = min(fastest, now() - start)
  }
  return fastest
}

func conversions(megabytes: Int) {
  let bytes = megabytes << 20
  let source = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
  let target = UnsafeMutableRawPointer.allocate(byteCount: bytes * 2, alignment: 64)
  defer { source.deallocate(); target.deallocate() }
  // Realistic weights: small normal values, touched once so no page faults are timed.
  let halves = source.bindMemory(to: UInt16.self, capacity: bytes / 2)
  for i in 0..<(bytes / 2) { halves[i] = 0x3000 &+ UInt16(truncatingIfNeeded: i &* 2_654_435_761 >> 7) & 0x0FFF }
  memset(target, 0, bytes * 2)

  // The checksum keeps the optimiser from dropping writes nobody reads.
  var checksum: UInt8 = 0
  func touch() { checksum &+= target.load(fromByteOffset: Int.random(in: 0..<bytes), as: UInt8.self) }
  let copy = best { memcpy(target, source, bytes); touch() }
  func gbps(_ seconds: Double) -> String { String(Double(bytes) / seconds / 1e9) }
  print("conversion throughput on \(megabytes) MB of input (best of 5), against memcpy of the same bytes")
  print("case            GB/s (input)   x memcpy")
  func row(_ name: String, _ seconds: Double) {
    let rate = (Double(bytes) / seconds / 1e9 * 100).rounded() / 100
    let ratio = (copy / seconds * 100).rounded() / 100
    print(name.padding(16) + "\(rate)".padding(15) + "\(ratio)")
  }
  row("memcpy", copy)
  let floats = target.bindMemory(to: Float.self, capacity: bytes / 2)
  row("F16 -> F32", best { defer { touch() }; FloatConversion.widen(source, dtype: .f16, count: bytes / 2, into: floats) })
  row("BF16 -> F32", best { defer { touch() }; FloatConversion.widen(source, dtype: .bf16, count: bytes / 2, into: floats) })
  let floatSource = source.bindMemory(to: Float.self, capacity: bytes / 4)
  row("F32 -> BF16", best { defer { touch() }; FloatConversion.narrow(floatSource, count: bytes / 4, to: .bf16, into: target) })
  row("F32 -> F16", best { defer { touch() }; FloatConversion.narrow(floatSource, count: bytes / 4, to: .f16, into: target) })
  _ = gbps
  print("(checksum \(checksum))")
}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "conversions":
  conversions(megabytes: arguments.dropFirst().first.flatMap { Int($0) } ?? 256)
default:
  print("usage: fedlora-bench conversions [MB]")
  exit(64)
}
