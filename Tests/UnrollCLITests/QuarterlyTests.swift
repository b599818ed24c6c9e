import Datasets
import Foundation
import TestSupport
@testable import UnrollCLI
import XCTest

/// The two-input forecaster on the repository's copy of the quarterly macro data, on a small setting.
final class QuarterlyTests: XCTestCase {
    func testTwoInputForecasterRunsAgainstSingleInputAndNaive() throws {
        let file = Fixture.dataFolder.appendingPathComponent("us_macro_quarterly.csv")
        let table = try CSVTable(contentsOf: file)
        let result = try QuarterlyCommand.evaluate(table, column: "realgdp", past: 4, epochs: 3, units: 4, seed: 1)
        // 203 quarters give 202 growths and 198 windows of 4: 158 train, 40 test.
        XCTAssertEqual(result.trainCount, 158)
        XCTAssertEqual(result.testCount, 40)
        // The naive forecast repeats the last growth: its RMSE is fixed by the data alone.
        let levels = try table.numericColumns(["realgdp"]).scalars
        let growth = (1..<levels.count).map { 100 * Foundation.log(levels[$0] / levels[$0 - 1]) }
        let errors = (158..<198).map { growth[$0 + 4] - growth[$0 + 3] }
        XCTAssertEqual(result.naive, (errors.map { $0 * $0 }.reduce(0, +) / 40).squareRoot(), accuracy: 1e-4)
        XCTAssertTrue(result.singleInput.isFinite && result.singleInput > 0)
        XCTAssertNotEqual(result.singleInput, result.twoInput, "the quarter changes the model")

        let (status, output) = runTool(["quarterly", file.path, "--past", "4", "--epochs", "2", "--units", "4"])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("realgdp growth: 158 training and 40 test windows."), output)
        XCTAssertTrue(output.contains("Test RMSE (growth points): naive "), output)
        XCTAssertEqual(runTool(["quarterly", file.path, "--column", "nope"]).status, 1)
    }
}
