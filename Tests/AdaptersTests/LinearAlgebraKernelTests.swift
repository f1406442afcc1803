import Checkpoints
import Testing

@testable import Adapters

@Suite("BLAS kernels: the CPU's widest, not the SSE3 fallback")
struct LinearAlgebraKernelTests {
  /// The CPU's feature flags, from /proc/cpuinfo.
  static var cpuFlags: Set<Substring> {
    guard let bytes = try? MappedFile.contents(of: "/proc/cpuinfo"),
      let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").first(where: { $0.hasPrefix("flags") })
    else { return [] }
    return Set(line.split(separator: " "))
  }

  @Test(
    "On a CPU with AVX2 and FMA, OpenBLAS runs AVX2 or AVX-512 kernels (Debian's 0.3.21 would run a model newer than it on Prescott's)",
    .enabled(if: LinearAlgebra.chosenKernels != nil))
  func kernels() {
    let flags = Self.cpuFlags
    let kernels = LinearAlgebra.kernels
    if flags.contains("avx512f") && flags.contains("avx512bw") && flags.contains("avx512vl") {
      #expect(LinearAlgebra.chosenKernels == "SKYLAKEX" && kernels == "SkylakeX", "\(kernels)")
    } else if flags.contains("avx2") && flags.contains("fma") {
      #expect(["HASWELL", "ZEN"].contains(LinearAlgebra.chosenKernels), "\(kernels)")
      #expect(!["Prescott", "Core2", "Nehalem", "Sandybridge", "Atom"].contains(kernels), "\(kernels)")
    }
  }
}
