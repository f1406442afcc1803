import ArgumentParser
import Checkpoints

/// `--json` and `--quiet`, the same on every command.
struct OutputOptions: ParsableArguments {
  @Flag(
    help:
      "Print one JSON document on standard output, success or failure ({schema, ok, warnings, error: {code, message}} and the report's fields, keyed as its columns); nothing else is printed on success."
  )
  var json = false

  @Flag(help: "No progress display and no report on standard output (warnings and errors still go to standard error).")
  var quiet = false
}
