import Foundation
import Graph
import Train
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

/// `train` warns about values far outside the rest of the series, naming the rows.
final class OutlierWarningTests: XCTestCase {
    func testASpikeIsNamedByRowAndATrendIsNot() throws {
        let folder = try temporaryDirectory(self)
        let csv = folder.appendingPathComponent("spike.csv")
        let rows = (0..<40).map { row in "\(row),\(row == 17 ? "1e20" : String(100 + row % 7)),\(row * 3)" }
        try (["t,y,trend"] + rows).joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        let result = runTool(["train", csv.path, "--target", "y", "--features", "trend", "--past", "3", "--epochs", "1",
                              "--units", "2", "--out", folder.appendingPathComponent("model").path])
        XCTAssertTrue(result.output.contains("warning: \(csv.path): column 'y' has 1 value(s) far outside the rest "
                                             + "(more than 20 median absolute deviations from the median) in row(s) 18 "),
                      result.output)
        XCTAssertFalse(result.output.contains("column 'trend'"), result.output)
        XCTAssertEqual(OutlierCheck.outlierRows(Tensor(shape: [4, 1], scalars: [5, 5, 5, 5]), columns: ["c"]).count, 0)
    }
}

/// Sizes that cannot fit are refused before anything is allocated.
final class MemoryEstimateTests: XCTestCase {
    func testTheParameterCountMatchesTheBuiltModel() throws {
        for cell in CellKind.allCases {
            for isBidirectional in [false, true] {
                let description = RecurrentModelDescription(cell: cell, hiddenSize: 5, layerCount: 2,
                                                            isBidirectional: isBidirectional, pastSteps: 4,
                                                            featureCount: 3, outputSize: 2)
                let model = description.makeModel()
                try model.compile(loss: .meanSquaredError, optimizer: SGD())
                XCTAssertEqual(description.parameterCount, Double(model.parameterCount), "\(cell) \(isBidirectional)")
            }
        }
    }

    func testHugeModelsAreRefusedBeforeAllocating() throws {
        let folder = try temporaryDirectory(self)
        let csv = folder.appendingPathComponent("ramp.csv")
        try (["t,y"] + (0..<30).map { "\($0),\($0)" }).joined(separator: "\n").write(to: csv, atomically: true, encoding: .utf8)
        let train = runTool(["train", csv.path, "--target", "y", "--units", "100000", "--out", folder.appendingPathComponent("m").path])
        XCTAssertEqual(train.status, 1)
        XCTAssertTrue(train.output.hasPrefix("error: training needs about "), train.output)
        XCTAssertTrue(train.output.contains("more than this machine's"), train.output)
        let summary = runTool(["summary", "--units", "100000", "--layers", "64"])
        XCTAssertEqual(summary.status, 1)
        XCTAssertTrue(summary.output.hasPrefix("error: the model needs about "), summary.output)
        XCTAssertThrowsError(try RecurrentModelDescription(hiddenSize: 20_000, pastSteps: 12, featureCount: 1, outputSize: 1)
            .checkFits(batchSize: 32, physicalMemory: 24e9))
    }
}
