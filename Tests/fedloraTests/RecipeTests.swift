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

@Suite("merge --recipe: a YAML recipe against the command line")
struct RecipeTests {
  static let clients = ["client_a", "client_b", "client_c"].map { Fixtures.path("adapters/" + $0) }

  @Test(
    "A recipe merges to the tensors of the equivalent command line and is recorded in the output",
    arguments: ["flora-na", "svd"])
  func equivalent(_ method: String) throws {
    let folder = Fixtures.scratch("recipe")
    defer { Fixtures.remove(folder) }
    // A relative client path, taken relative to the recipe's folder (not the working directory).
    symlink(Self.clients[0], folder + "/first")
    let recipe = """
      method: \(method)
      clients:
        - {path: first, samples: 100}
        - {path: \(Self.clients[1]), samples: 200}
        - path: \(Self.clients[2])
          samples: 300
      output: merged
      \(method == "svd" ? "rank: 6" : "max_iterations: 40")
      dtype: f16
      """
    Fixtures.write(Array(recipe.utf8), to: folder + "/recipe.yaml")
    let run = try CLI.run(["merge", "--recipe", folder + "/recipe.yaml", "--quiet"], directory: "/")
    #expect(run.status == 0, "\(run.stderr)")
    let options = method == "svd" ? ["--rank", "6"] : ["--max-iterations", "40"]
    let cli = try CLI.run(
      ["merge"] + Self.clients + [
        "--method", method, "--samples", "100,200,300", "--dtype", "f16", "-o", folder + "/cli", "--quiet",
      ] + options)
    #expect(cli.status == 0, "\(cli.stderr)")
    let (fromRecipe, fromCLI) = (try Checkpoint.open(folder + "/merged"), try Checkpoint.open(folder + "/cli"))
    #expect(fromRecipe.tensors.map(\.name) == fromCLI.tensors.map(\.name))
    for (a, b) in zip(fromRecipe.tensors, fromCLI.tensors) { #expect(try a.copyBytes() == b.copyBytes(), "\(a.name)") }
    #expect(fromRecipe.metadata.first { $0.key == "fedlora.recipe" }?.value == recipe)
    #expect(try CLI.run(["merge", "--recipe", folder + "/recipe.yaml", "--dry-run", "--quiet"]).status == 0)
  }

  @Test(
    "An unknown key, a wrong type, a malformed client or an option given twice is a usage error naming the key and its line"
  )
  func refused() throws {
    let folder = Fixtures.scratch("recipe-bad")
    defer { Fixtures.remove(folder) }
    let client = Self.clients[0]
    let cases: [(recipe: String, arguments: [String], message: String)] = [
      ("method: fedavg\nclients: [{path: \(client)}]\nouput: x\n", [], "recipe.yaml:3: unknown key 'ouput'"),
      ("clients: [{path: \(client)}]\noutput: x\nrank: \"8\"\n", [], "recipe.yaml:3: 'rank' must be an integer"),
      (
        "clients:\n  - {path: \(client), weight: 1, samples: 2}\noutput: x\n", [],
        "recipe.yaml:2: a client has 'weight' or 'samples', not both"
      ),
      ("clients:\n  - {file: \(client)}\noutput: x\n", [], "recipe.yaml:2: unknown client key 'file'"),
      ("clients: [{path: \(client)}]\noutput: x\nallow_missing: maybe\n", [], "'allow_missing' must be true or false"),
      ("output: x\n", [], "no 'clients'"),
      (
        "clients: [{path: \(client)}]\nmethod: svd\noutput: x\n", ["--method", "fedavg"],
        "--method given both here and in the recipe"
      ),
      ("clients: [{path: \(client)}]\noutput: x\n", [client], "CLIENT arguments given both here and in the recipe"),
    ]
    for (recipe, arguments, message) in cases {
      Fixtures.write(Array(recipe.utf8), to: folder + "/recipe.yaml")
      let run = try CLI.run(["merge", "--recipe", folder + "/recipe.yaml"] + arguments)
      #expect(run.status == 64 && run.stderr.contains(message), "\(message): \(run.stderr)")
    }
    #expect(!Checkpoint.exists(folder + "/x"))
  }
}
