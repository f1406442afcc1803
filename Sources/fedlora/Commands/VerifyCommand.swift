import Adapters
import ArgumentParser
import Checkpoints

struct VerifyCommand: PipelineCommand {
  static let schema = "fedlora.verify/1"

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

  @OptionGroup var outputOptions: OutputOptions

  func validate() throws {
    if showChecksums, !data { throw ValidationError("--checksums prints the CRC-32s --data computes: give --data") }
  }

  func execute() throws {
    let json = outputOptions.json
    var allValid = true
    var failed = 0
    var reports: [JSON] = []
    for path in paths {
      let (tensorCount, scans, problems) = check(path)
      allValid = allValid && problems.isEmpty
      if !problems.isEmpty { failed += 1 }
      if json {
        reports.append(
          .object([
            ("path", .string(path)),
            ("valid", .bool(problems.isEmpty)),
            ("tensor_count", JSON(tensorCount)),
            (
              "problems",
              .array(problems.map(\.json))
            ),
            (
              "tensors",
              data
                ? .array(
                  scans.map { tensor, scan in
                    .object([
                      ("name", .string(tensor.name)), ("dtype", .string(tensor.dtype.rawValue)),
                      ("crc32", .string(hex(scan.crc32))), ("nan", JSON(scan.nanCount)), ("inf", JSON(scan.infCount)),
                      ("values_checked", .bool(scan.valuesChecked)),
                    ])
                  }) : .null
            ),
          ]))
      } else if problems.isEmpty {
        let detail = data ? "\(tensorCount) tensors, all values finite" : "\(tensorCount) tensors, structure valid"
        Session.result("\(Terminal.green("ok"))    \(path) (\(detail))")
        if showChecksums {
          for (tensor, scan) in scans { Session.result("      \(hex(scan.crc32))  \(tensor.name.visible)") }
        }
        let unchecked = scans.filter { !$0.1.valuesChecked }.map(\.0.dtype.rawValue)
        if !unchecked.isEmpty {
          Session.warn(
            "\(path): values of \(Set(unchecked).sorted().joined(separator: ", ")) tensors cannot be decoded; only their CRC-32 was computed"
          )
        }
      } else {
        for problem in problems { Session.result("\(Terminal.red("FAIL"))  \(problem.message.visible)") }
      }
    }
    if json {
      var fields: [(key: String, value: JSON)] = [("valid", .bool(allValid)), ("files", .array(reports))]
      if !allValid {
        fields.append(
          (
            "error",
            .object([
              ("code", .string("verify-failed")),
              ("message", .string("\(failed) of \(paths.count) paths failed verification")),
            ])
          ))
      }
      Terminal.out(Session.document(ok: allValid, fields))
    }
    if !allValid { throw ExitCode.failure }
  }

  /// Opens and validates one path; with --data scans every tensor.
  private func check(_ path: String) -> (
    tensorCount: Int, scans: [(Tensor, TensorScan)], problems: [Problem]
  ) {
    let checkpoint: Checkpoint
    do { checkpoint = try Checkpoint.open(path) } catch {
      // A pickle naming globals outside the allowlist: each one is a failure of its own, as
      // picklescan and modelscan list them (nothing of the file was imported or run).
      if case let .unsafePickle(_, globals) = error {
        return (
          0, [],
          globals.map { global in
            Problem(
              code: "unsafe-global",
              message:
                "\(path): data.pkl byte \(global.offset) names \(global.module).\(global.name), which unpickling would import and call",
              global: global)
          }
        )
      }
      return (0, [], [Problem(code: error.code, message: error.description)])
    }
    let adapterProblems = adapterConfigProblems(checkpoint)
    guard data else { return (checkpoint.tensors.count, [], adapterProblems) }
    var scans: [(Tensor, TensorScan)] = []
    for tensor in checkpoint.tensors {
      do { scans.append((tensor, try TensorScan(tensor))) } catch {
        return (
          checkpoint.tensors.count, scans, adapterProblems + [Problem(code: error.code, message: error.description)]
        )
      }
    }
    var problems = scans.filter { $0.1.nanCount + $0.1.infCount > 0 }.map { tensor, scan in
      Problem(
        code: "non-finite",
        message: "\(path): tensor '\(tensor.name)' has \(scan.nanCount) NaN and \(scan.infCount) infinite values")
    }
    // A PyTorch archive's stored storages against their CRC-32 (opening maps them unread).
    if checkpoint.format == .pytorch || checkpoint.format == .shardedPytorch {
      for file in checkpoint.files {
        do {
          problems += try PyTorchFile.entriesFailingCRC(in: file).map { entry in
            Problem(
              code: "bad-crc", message: "\(file.path): entry '\(entry)' fails its CRC-32 check (corrupt or altered)")
          }
        } catch {
          problems.append(Problem(code: error.code, message: error.description))
        }
      }
    }
    return (checkpoint.tensors.count, scans, adapterProblems + problems)
  }

  /// An adapter's config (`adapter_config.json` beside the tensors, or carried in their
  /// metadata) is validated too: strict JSON, the types PEFT expects, and agreement with the
  /// tensors (every module paired, the ranks the config gives).
  private func adapterConfigProblems(_ checkpoint: Checkpoint) -> [Problem] {
    let hasConfig =
      Checkpoint.isFile(checkpoint.folder + "/adapter_config.json")
      || checkpoint.metadata.contains { $0.key == AdapterConfig.metadataKey }
    guard hasConfig, checkpoint.gguf == nil else { return [] }
    do {
      return try Adapter.load(checkpoint.path, lenient: true).problems.map {
        Problem(code: $0.code, message: $0.description)
      }
    } catch {
      return [Problem(code: error.code, message: error.description)]
    }
  }

  /// One failure of a path: its code and message, and for an unsafe pickle the global.
  struct Problem {
    let code: String
    let message: String
    var global: PickleGlobal? = nil

    var json: JSON {
      var fields: [(key: String, value: JSON)] = [("code", .string(code)), ("message", .string(message))]
      if let global {
        fields.append(("global", .string(global.module + "." + global.name)))
        fields.append(("offset", JSON(global.offset)))
      }
      return .object(fields)
    }
  }

  private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
  }
}
