import Foundation
import XCTest

/// Training is bitwise the same whatever the thread count: `unroll train` with `UNROLL_THREADS` 1, 2, 7 and 16
/// saves the same weights, byte for byte.
final class ThreadReproducibilityTests: XCTestCase {
    func testWeightsAreIdenticalForEveryThreadCount() throws {
        let unroll = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("unroll")
        guard FileManager.default.isExecutableFile(atPath: unroll.path) else {
            throw XCTSkip("no unroll executable at \(unroll.path) (build it with 'swift build --build-tests')")
        }
        let folder = try temporaryDirectory(self)
        let csv = folder.appendingPathComponent("waves.csv")
        let rows = (0..<300).map { row in
            "\(row),\(String(format: "%.5f", sin(Double(row) / 7))),\(String(format: "%.5f", 3 * cos(Double(row) / 11) + Double(row) / 100))"
        }
        try (["t,x,y"] + rows).joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        var weights: [Int: Data] = [:]
        // Products of 64 × 16 × 384 and larger: over the 1-MFLOP threshold where matrix products use threads.
        for threads in [1, 2, 7, 16] {
            let directory = folder.appendingPathComponent("model-\(threads)")
            let process = Process()
            process.executableURL = unroll
            process.arguments = ["train", csv.path, "--target", "y", "--features", "x", "--past", "16", "--units", "96",
                                 "--epochs", "1", "--batch-size", "64", "--out", directory.path]
            process.environment = ProcessInfo.processInfo.environment.merging(["UNROLL_THREADS": "\(threads)"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "\(threads) threads")
            weights[threads] = try Data(contentsOf: directory.appendingPathComponent("model.safetensors"))
        }
        for threads in [2, 7, 16] {
            XCTAssertEqual(weights[threads], weights[1], "\(threads) threads give other weights than 1")
        }
    }
}
