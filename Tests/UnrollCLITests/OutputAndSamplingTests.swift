import Foundation
import Graph
@testable import UnrollCLI
import XCTest

/// Output paths are checked before any training; sampling near temperature 0 is greedy; the printed RMSE
/// is computed in Double.
final class OutputAndSamplingTests: XCTestCase {
    func testOutputPathsAreCheckedBeforeTraining() throws {
        let folder = try temporaryDirectory(self)
        let csv = folder.appendingPathComponent("ramp.csv")
        try (["t,y"] + (0..<30).map { "\($0),\($0 * 2)" }).joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        let train = ["train", csv.path, "--target", "y", "--past", "3", "--epochs", "1", "--units", "2"]

        let empty = runTool(train + ["--out", ""])
        XCTAssertEqual(empty.status, 2, empty.output)
        XCTAssertTrue(empty.output.hasPrefix("error: option '--out' is empty; give a path\n"), empty.output)

        let file = folder.appendingPathComponent("notes.txt")
        try Data("keep".utf8).write(to: file)
        let underFile = runTool(train + ["--out", file.path + "/model"])
        XCTAssertEqual(underFile.output, "error: cannot write --out '\(file.path)/model': \(file.path) is a file, not a directory.\n")
        let ontoFile = runTool(train + ["--out", file.path])
        XCTAssertEqual(ontoFile.output, "error: cannot write --out '\(file.path)': it is a file, not a directory.\n")
        let ontoFolder = runTool(train + ["--out", folder.path])
        XCTAssertEqual(ontoFolder.status, 1)
        XCTAssertTrue(ontoFolder.output.hasPrefix("error: cannot write --out '\(folder.path)': it holds 'notes.txt', 'ramp.csv'"),
                      ontoFolder.output)
        for result in [underFile, ontoFile, ontoFolder] {
            XCTAssertEqual(result.status, 1)
            XCTAssertFalse(result.output.contains("epoch"), "no training before the check: \(result.output)")
        }
        XCTAssertEqual(try Data(contentsOf: file), Data("keep".utf8))

        let graph = runTool(["graph", "--out", folder.path])
        XCTAssertEqual(graph.output, "error: cannot write --out '\(folder.path)': it is a directory, not a file.\n")
    }

    func testSamplingNearZeroTemperatureIsGreedy() {
        var generator = SeededGenerator(seed: 1)
        let logits: [Float] = [0.1, 2.0, 1.9, -3]
        for temperature: Float in [1e-30, 1e-12, 1e-6] {
            let draws = (0..<50).map { _ in TextGenerationCommand.sample(logits: logits, temperature: temperature, generator: &generator) }
            XCTAssertEqual(Set(draws), [1], "temperature \(temperature)")
        }
    }

    func testForecastRMSEIsAccumulatedInDouble() {
        XCTAssertEqual(ForecastResult.rootMeanSquaredError([1e20, 0], [0, 0]), Float((1e40 / 2.0).squareRoot()),
                       accuracy: 1e14)
    }
}
