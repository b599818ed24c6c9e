// swift-tools-version:6.0
import PackageDescription

// Modules, each importing only those to its left: Kernels ← Graph ← Layers ← Serialization ← Train, and
// Graph ← Datasets. `Unroll` re-exports Graph, Layers, Datasets, Serialization and Train for `import Unroll`.
let package = Package(
    name: "Unroll",
    products: [
        .library(name: "Unroll", targets: ["Unroll"]),
        .library(name: "Graph", targets: ["Graph"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Serialization", targets: ["Serialization"]),
        .library(name: "Train", targets: ["Train"]),
        .executable(name: "unroll", targets: ["unroll"]),
    ],
    targets: [
        // SIMD kernels: AVX2/FMA versions chosen at run time after a CPU check, portable fallbacks otherwise.
        .target(name: "Kernels"),
        .target(name: "Graph", dependencies: ["Kernels"]),
        .target(name: "Layers", dependencies: ["Graph", "Kernels"]),
        .target(name: "Datasets", dependencies: ["Graph"]),
        .target(name: "Serialization", dependencies: ["Graph", "Layers"]),
        .target(name: "Train", dependencies: ["Kernels", "Graph", "Layers", "Serialization"]),
        .target(name: "Unroll", dependencies: ["Graph", "Layers", "Datasets", "Serialization", "Train"]),
        // The command-line tool's logic lives in a library so tests can run every subcommand in-process.
        .target(name: "UnrollCLI", dependencies: ["Kernels", "Graph", "Layers", "Datasets", "Serialization", "Train"]),
        .executableTarget(name: "unroll", dependencies: ["UnrollCLI"]),
        .target(name: "TestSupport", dependencies: ["Graph"], path: "Tests/TestSupport"),
        .testTarget(name: "GraphTests", dependencies: ["Graph", "TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Layers", "TestSupport"]),
        .testTarget(name: "SerializationTests", dependencies: ["Serialization", "Train", "TestSupport"]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "Datasets", "TestSupport"]),
        .testTarget(name: "UnrollCLITests", dependencies: ["UnrollCLI", "Datasets", "Layers", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
