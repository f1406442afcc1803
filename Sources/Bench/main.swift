import CLinearAlgebra
import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

// fedlora-bench: micro-benchmarks that print figures, each against a baseline measured in the
// same run (a ratio means more than a time on a noisy machine).
//
//   swift run -c release fedlora-bench conversions [MB]

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
  defer {
    source.deallocate()
    target.deallocate()
  }
  // Realistic weights: small normal values, touched once so no page faults are timed.
  let halves = source.bindMemory(to: UInt16.self, capacity: bytes / 2)
  for i in 0..<(bytes / 2) { halves[i] = 0x3000 &+ UInt16(truncatingIfNeeded: i &* 2_654_435_761 >> 7) & 0x0FFF }
  memset(target, 0, bytes * 2)

  // The checksum keeps the optimiser from dropping writes nobody reads.
  var checksum: UInt8 = 0
  func touch() { checksum &+= target.load(fromByteOffset: Int.random(in: 0..<bytes), as: UInt8.self) }
  let copy = best {
    memcpy(target, source, bytes)
    touch()
  }
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
  row(
    "F16 -> F32",
    best {
      defer { touch() }
      FloatConversion.widen(source, dtype: .f16, count: bytes / 2, into: floats)
    })
  row(
    "BF16 -> F32",
    best {
      defer { touch() }
      FloatConversion.widen(source, dtype: .bf16, count: bytes / 2, into: floats)
    })
  let floatSource = source.bindMemory(to: Float.self, capacity: bytes / 4)
  row(
    "F32 -> BF16",
    best {
      defer { touch() }
      FloatConversion.narrow(floatSource, count: bytes / 4, to: .bf16, into: target)
    })
  row(
    "F32 -> F16",
    best {
      defer { touch() }
      FloatConversion.narrow(floatSource, count: bytes / 4, to: .f16, into: target)
    })
  _ = gbps
  print("(checksum \(checksum))")
}

extension String {
  func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// The per-layer linear algebra of an aggregation with its exact errors, for one layer of
/// `clients` x rank 16 (N = 16 clients): the Gram blocks of the stacks (fp64 DSYRK and fp32 SSYRK
/// over the long dimension) and the LAPACK work on the N x N cores, in GFLOP/s and ms.
func layerAlgebra(clients: Int) {
  la_set_num_threads(1)
  print("OpenBLAS kernels: \(String(cString: la_core_name()))")
  let n = clients * 16
  for length in [4096, 11008] {
    let doubles = (0..<(n * length)).map { _ in Double(Float.random(in: -1...1)) }
    let floats = doubles.map { Float($0) }
    var out = [Double](repeating: 0, count: n * n)
    var outFloat = [Float](repeating: 0, count: n * n)
    let flops = Double(n * n * length)
    let dsyrk = best(3) {
      la_dsyrk(
        CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(length), 1, doubles, Int32(length), 0, &out, Int32(n))
    }
    let ssyrk = best(3) {
      la_ssyrk(
        CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(length), 1, floats, Int32(length), 0, &outFloat,
        Int32(n))
    }
    let dsyrkT = best(3) {
      la_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(length), 1, doubles, Int32(n), 0, &out, Int32(n))
    }
    print(
      "N \(n), length \(length): DSYRK \(Int(flops / dsyrk / 1e9)) GFLOP/s (\(Int(dsyrk * 1e3)) ms), transposed \(Int(flops / dsyrkT / 1e9)) GFLOP/s; SSYRK \(Int(flops / ssyrk / 1e9)) GFLOP/s"
    )
  }
  let gram = (0..<(n * 2 * n)).map { _ in Double.random(in: -1...1) }
  var g = [Double](repeating: 0, count: n * n)
  la_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(2 * n), 1, gram, Int32(2 * n), 0, &g, Int32(n))
  var w = [Double](repeating: 0, count: n)
  let eigen = best(3) {
    var a = g
    _ = la_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
  }
  let eigenValues = best(3) {
    var a = g
    _ = la_dsyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
  }
  var u = [Double](repeating: 0, count: n * n), vt = u
  let svd = best(3) {
    var a = g
    _ = la_dgesdd(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "S")), Int32(n), Int32(n), &a, Int32(n), &w, &u, Int32(n), &vt, Int32(n))
  }
  let svdValues = best(3) {
    var a = g
    _ = la_dgesdd(
      LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "N")), Int32(n), Int32(n), &a, Int32(n), &w, &u, Int32(n), &vt, Int32(n))
  }
  var piv = [Int32](repeating: 0, count: n)
  var rank: Int32 = 0
  let cholesky = best(3) {
    var a = g
    _ = la_dpstrf(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &piv, &rank, -1)
  }
  let gemm = best(3) {
    la_dgemm(
      CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, g, Int32(n), g, Int32(n), 0, &u,
      Int32(n))
  }
  func ms(_ t: Double) -> String { "\((t * 1e5).rounded() / 100) ms" }
  print(
    "N \(n) cores: dsyevd \(ms(eigen)) (values only \(ms(eigenValues))), dgesdd \(ms(svd)) (values only \(ms(svdValues))), dpstrf \(ms(cholesky)), dgemm \(ms(gemm))"
  )
}

let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "conversions":
  conversions(megabytes: arguments.dropFirst().first.flatMap { Int($0) } ?? 256)
case "layer-algebra":
  layerAlgebra(clients: arguments.dropFirst().first.flatMap { Int($0) } ?? 10)
default:
  print("usage: fedlora-bench conversions [MB] | layer-algebra [CLIENTS]")
  exit(64)
}
