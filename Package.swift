// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Unroll",
    products: [
        .library(name: "Graph", targets: ["Graph"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "Train", targets: ["Train"]),
        .executable(name: "unroll", targets: ["unroll"]),
    ],
    targets: [
        // SIMD kernels: AVX2/FMA versions chosen at run time after a CPU check, portable fallbacks otherwise.
        .target(name: "Kernels"),
        .target(name: "Graph", dependencies: ["Kernels"]),
        .target(name: "Layers", dependencies: ["Graph", "Kernels"]),
        .target(name: "Train", dependencies: ["Layers"]),
        // The command-line tool's logic lives in a library so tests can run every subcommand in-process.
        .target(name: "UnrollCLI", dependencies: ["Train"]),
        .executableTarget(name: "unroll", dependencies: ["UnrollCLI"]),
        .target(name: "TestSupport", dependencies: ["Graph"], path: "Tests/TestSupport"),
        .testTarget(name: "GraphTests", dependencies: ["Graph", "TestSupport"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "TestSupport"]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "TestSupport"]),
        .testTarget(name: "UnrollCLITests", dependencies: ["UnrollCLI", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
