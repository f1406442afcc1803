// The C library, named once for the package. Swift imports are per file, so it is re-exported
// here instead of an `#if canImport` block in every file that maps, reads or renames files:
// Checkpoints is the package's layer over the operating system, and what imports it gets the
// C library with it, as Foundation's importers do on Linux.
#if canImport(Glibc)
  @_exported import Glibc
#elseif canImport(Musl)
  @_exported import Musl
#elseif canImport(Darwin)
  @_exported import Darwin
#endif
