// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "fedlora",
  // Built and tested on Linux (Debian/Ubuntu: the system libraries below come from apt).
  products: [
    .executable(name: "fedlora", targets: ["fedlora"]),
    .library(name: "Checkpoints", targets: ["Checkpoints"]),
    .library(name: "Adapters", targets: ["Adapters"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
  ],
  targets: [
    .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
    .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", providers: [.apt(["libssl-dev"])]),
    .target(name: "CSIMD"),
    // BLAS/LAPACK through dlopen on first use (Sources/CLinearAlgebra): not linked, so not loaded by commands that compute nothing.
    .target(name: "CLinearAlgebra", linkerSettings: [.linkedLibrary("dl")]),
    .target(name: "Checkpoints", dependencies: ["CZlib", "COpenSSL", "CSIMD"]),
    .target(name: "Adapters", dependencies: ["Checkpoints", "CLinearAlgebra"]),
    .executableTarget(
      name: "fedlora",
      dependencies: [
        "Checkpoints", "Adapters", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Yams", package: "Yams"),
      ]
    ),
    .executableTarget(
      name: "fedlora-bench", dependencies: ["Checkpoints", "Adapters", "CLinearAlgebra"], path: "Sources/Bench"),
    .executableTarget(name: "fedlora-fuzz", dependencies: ["Checkpoints", "Adapters"], path: "Sources/Fuzz"),
    // A program using the libraries only: the tests run it without BLAS to see an error, not an exit.
    .executableTarget(
      name: "fedlora-library-example", dependencies: ["Checkpoints", "Adapters"], path: "Sources/LibraryExample"),
    .target(name: "TestSupport", dependencies: ["Checkpoints"], path: "Tests/TestSupport"),
    .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"]),
    .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "TestSupport", "fedlora-library-example"]),
    .testTarget(name: "fedloraTests", dependencies: ["fedlora", "TestSupport"]),
  ]
)

// API documentation (`make docs`): the DocC plugin is a dependency only when FEDLORA_DOCC is set,
// so that other builds, clean ones and CI's included, neither resolve nor build it.
if Context.environment["FEDLORA_DOCC"] != nil {
  package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}
