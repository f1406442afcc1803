import ArgumentParser
import Checkpoints

struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Validate checkpoint files fully; with --data, scan every value.",
    discussion: """
      Checks each file against every structural rule fedlora knows (header, offsets, sizes, \
      alignment, shards). With --data it also reads every tensor: it counts NaN and infinite \
      values and computes a CRC-32 of each tensor's bytes. Prints one line per problem; exits \
      0 when every file is valid and, with --data, holds only finite values; 1 otherwise.
      """
  )

  @Argument(help: "Checkpoint files or folders.", completion: .file())
  var paths: [String]

  @Flag(help: "Also read all tensor data: NaN/Inf counts and a CRC-32 per tensor.")
  var data = false

  @Flag(name: .customLong("checksums"), help: "With --data, print each tensor's CRC-32 (always in --json).")
  var showChecksums = false

  @Flag(help: "Print JSON (schema fedlora.verify/1) on standard output.")
  var json = false

  func run() throws {
    var allValid = true
    var reports: [JSON] = []
    for path in paths {
      let (tensorCount, scans, problems) = check(path)
      allValid = allValid && problems.isEmpty
      if json {
        reports.append(.object([
          ("path", .string(path)),
          ("valid", .bool(problems.isEmpty)),
          ("tensor_count", JSON(tensorCount)),
          ("problems", .array(problems.map { .object([("code", .string($0.code)), ("message", .string($0.message))]) })),
          ("tensors", data ? .array(scans.map { tensor, scan in
            .object([
              ("name", .string(tensor.name)), ("dtype", .string(tensor.dtype.rawValue)),
              ("crc32", .string(hex(scan.crc32))), ("nan", JSON(scan.nanCount)), ("inf", JSON(scan.infCount)),
              ("values_checked", .bool(scan.valuesChecked)),
            ])
          }) : .null),
        ]))
      } else if problems.isEmpty {
        let detail = data ? "\(tensorCount) tensors, all values finite" : "\(tensorCount) tensors, structure valid"
        Terminal.out("\(Terminal.green("ok"))    \(path) (\(detail))")
        if showChecksums {
          for (tensor, scan) in scans { Terminal.out("      \(hex(scan.crc32))  \(tensor.name)") }
        }
        let unchecked = scans.filter { !$0.1.valuesChecked }.map(\.0.dtype.rawValue)
        if !unchecked.isEmpty {
          Terminal.warn("\(path): values of \(Set(unchecked).sorted().joined(separator: ", ")) tensors cannot be decoded; only their CRC-32 was computed")
        }
      } else {
        for problem in problems { Terminal.out("\(Terminal.red("FAIL"))  \(problem.message)") }
      }
    }
    if json {
      Terminal.out(JSON.object([("schema", .string("fedlora.verify/1")), ("valid", .bool(allValid)), ("files", .array(reports))]).prettyText)
    }
    if !allValid { throw ExitCode.failure }
  }

  /// Opens and validates one path; with --data scans every tensor.
  private func check(_ path: String) -> (tensorCount: Int, scans: [(Tensor, TensorScan)], problems: [(code: String, message: String)]) {
    let checkpoint: Checkpoint
    do { checkpoint = try Checkpoint.open(path) } catch { return (0, [], [(error.code, error.description)]) }
    guard data else { return (checkpoint.tensors.count, [], []) }
    let scans = checkpoint.tensors.map { ($0, TensorScan($0)) }
    let problems = scans.filter { $0.1.nanCount + $0.1.infCount > 0 }.map { tensor, scan in
      ("non-finite", "\(path): tensor '\(tensor.name)' has \(scan.nanCount) NaN and \(scan.infCount) infinite values")
    }
    return (checkpoint.tensors.count, scans, problems)
  }

  private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
  }
}
