// Built with `-sanitize=fuzzer -DFUZZING` (make fuzz), libFuzzer drives LLVMFuzzerTestOneInput
// with the target named by FEDLORA_FUZZ_TARGET. Built plainly, this is a replayer: it runs the
// files and folders it is given through a target (CI replays every corpus this way).

import Checkpoints
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

/// A line on stderr (without the C `stderr` global, which strict concurrency refuses).
func complain(_ line: String) {
  var text = line + "\n"
  text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

nonisolated(unsafe) var target: FuzzTarget?
nonisolated(unsafe) var scratch: Scratch?

/// libFuzzer's entry point: one input through the target FEDLORA_FUZZ_TARGET names.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
  if target == nil {
    target = getenv("FEDLORA_FUZZ_TARGET").flatMap { FuzzTarget(rawValue: String(cString: $0)) }
    scratch = Scratch()
  }
  guard let target, let scratch else {
    complain("set FEDLORA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
    exit(2)
  }
  target.run(data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? [], in: scratch)
  return 0
}

#if FUZZING
  // SwiftPM gives an executable its own entry point, so libFuzzer's main is not the one that
  // runs: start its driver here.
  @_silgen_name("LLVMFuzzerRunDriver")
  func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
  ) -> CInt

  var argc = CommandLine.argc
  var argv = CommandLine.unsafeArgv
  exit(runDriver(&argc, &argv, fuzzOne))
#else
  /// `fedlora-fuzz TARGET PATH...`: every file (folders: every file in them) through TARGET.
  func replay(_ arguments: [String]) -> Int32 {
    guard arguments.count >= 2, let chosen = FuzzTarget(rawValue: arguments[0]) else {
      complain(
        "usage: fedlora-fuzz TARGET PATH...  (TARGET: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
      return 64
    }
    let scratch = Scratch()
    var count = 0
    for path in arguments.dropFirst() {
      var isFolder = stat()
      let files: [String]
      if stat(path, &isFolder) == 0, (isFolder.st_mode & S_IFMT) == S_IFDIR, let dir = opendir(path) {
        var names: [String] = []
        while let entry = readdir(dir) {
          let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
          }
          if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        closedir(dir)
        files = names.sorted()
      } else {
        files = [path]
      }
      for file in files {
        guard let handle = fopen(file, "rb") else { continue }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while case let n = fread(&buffer, 1, buffer.count, handle), n > 0 { bytes += buffer.prefix(n) }
        fclose(handle)
        chosen.run(bytes, in: scratch)
        count += 1
      }
    }
    print("\(chosen.rawValue): \(count) inputs replayed, none crashed")
    return 0
  }

  exit(replay(Array(CommandLine.arguments.dropFirst())))
#endif
