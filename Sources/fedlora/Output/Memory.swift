#if canImport(Glibc)
  /// glibc's `mallopt` (malloc.h is not part of the Glibc module).
  @_silgen_name("mallopt")
  private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

enum Memory {
  /// Layer workers allocate and free matrices of tens of MB per layer. glibc would hand each
  /// back to the kernel and fault fresh zeroed pages in for the next layer (a third of the run
  /// time as system time); keeping freed blocks in the heap lets the next layer reuse them.
  static func keepFreedBlocks() {
    #if canImport(Glibc)
      let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3  // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
      _ = mallopt(mmapThreshold, 512 << 20)
      _ = mallopt(trimThreshold, 1 << 30)
    #endif
  }
}
