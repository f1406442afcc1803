import Checkpoints
import TestSupport
import Testing
#if canImport(Glibc)
  internal import Glibc
#elseif canImport(Musl)
  internal import Musl
#elseif canImport(Darwin)
  internal import Darwin
#endif

@Suite("Hugging Face ids resolved from the local cache, offline")
struct HubCacheTests {
  /// A cache laid out as huggingface_hub lays it out: blobs, a snapshot of links into them, refs.
  static func cache(_ root: String, commit: String, refs: [String: String]) throws {
    let entry = root + "/models--org--adapter"
    for folder in [entry, entry + "/blobs", entry + "/snapshots", entry + "/snapshots/" + commit, entry + "/refs"] {
      mkdir(folder, 0o755)
    }
    for name in ["adapter_config.json", "adapter_model.safetensors"] {
      let blob = entry + "/blobs/" + name + ".blob"
      Fixtures.write(try Fixtures.read(Fixtures.path("adapters/client_a/" + name)), to: blob)
      symlink("../../blobs/" + name + ".blob", entry + "/snapshots/" + commit + "/" + name)
    }
    for (ref, target) in refs { Fixtures.write(Array(target.utf8), to: entry + "/refs/" + ref) }
  }

  @Test(
    "owner/name, @branch and @commit open the snapshot; an id not cached names where it was looked for; a local path that is not there is not-found"
  )
  func ids() throws {
    let root = Fixtures.scratch("hub")
    defer { Fixtures.remove(root) }
    let commit = String(repeating: "ab12", count: 10)
    try Self.cache(root, commit: commit, refs: ["main": commit + "\n", "v1": commit])
    let environment = ["HF_HUB_CACHE": root]
    for id in ["org/adapter", "org/adapter@v1", "org/adapter@" + commit] {
      let run = try CLI.run(["inspect", id, "--json"], environment: environment)
      #expect(run.status == 0, "\(id): \(run.stderr)")
      #expect(try JSON.parse(run.stdout, path: "stdout")["path"]?.stringValue == id)
    }
    let merged = try CLI.run(
      [
        "merge", "org/adapter", Fixtures.path("adapters/client_b"), "-o", root + "/out", "--method", "fedavg",
        "--quiet",
      ], environment: environment)
    #expect(merged.status == 0, "\(merged.stderr)")
    let missing = try CLI.run(["inspect", "org/other@v2"], environment: environment)
    #expect(
      missing.status == 1 && missing.stderr.contains(root + "/models--org--other/refs/v2")
        && missing.stderr.contains("never downloads"))
    // A typo in a local path is a missing file, not a missing download; an id names the path and the cache.
    let local = Fixtures.path("adapters")
    let scratch = Fixtures.scratch("typo")
    defer { Fixtures.remove(scratch) }
    mkdir(scratch + "/clients", 0o755)
    for (path, directory, code, says) in [
      ("clients/nope", scratch, "not-found", "clients exists"), (local + "/nope", nil, "not-found", local + " exists"),
      ("./nope", nil, "not-found", "no such file or folder"), ("a/b/c", nil, "not-found", "no such file or folder"),
      ("~/nope", nil, "not-found", "no such file or folder"),
      ("org/nothing", scratch, "not-cached", root + "/models--org--nothing/refs/main"),
    ] {
      let run = try CLI.run(
        ["merge", Fixtures.path("adapters/client_a"), path, "-o", scratch + "/out", "--json"],
        environment: environment, directory: directory)
      let error = try JSON.parse(run.stdout, path: "stdout")["error"]
      #expect(run.status == 1 && error?["code"]?.stringValue == code, "\(path): \(run.stdout)")
      #expect(error?["message"]?.stringValue?.contains(says) == true, "\(path): \(run.stdout)")
    }
    // HF_HOME/hub when HF_HUB_CACHE is not set.
    let home = Fixtures.scratch("hf-home")
    defer { Fixtures.remove(home) }
    mkdir(home + "/hub", 0o755)
    try Self.cache(home + "/hub", commit: commit, refs: ["main": commit])
    #expect(try CLI.run(["inspect", "org/adapter"], environment: ["HF_HUB_CACHE": "", "HF_HOME": home]).status == 0)
  }
}
