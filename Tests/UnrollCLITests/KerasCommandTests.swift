import Foundation
import Train
import XCTest
@testable import UnrollCLI

/// `unroll summary` and `unroll predict` on Keras files made by Keras 3 (`Tests/Fixtures/keras`).
final class KerasCommandTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/keras")

    static func fixture(_ name: String) -> String { fixtures.appendingPathComponent(name).path }

    func testSummaryOfAKerasFileCountsKerasParameters() {
        let (status, output) = runTool(["summary", "--model", Self.fixture("course_lstm400.keras")])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("│ lstm (LSTM)                     │ (None, 400)"), output)
        XCTAssertTrue(output.contains("Total params: 646,408"), output)
    }

    func testPredictJSONPrintsKerasPredictionsAsOneArray() throws {
        for name in ["lstm_gru_dense", "embedding_lstm_softmax"] {
            let record = try XCTUnwrap(JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: Self.fixture(name + ".json")))) as? [String: Any])
            let directory = try temporaryDirectory(self)
            let input = directory.appendingPathComponent("input.json")
            try JSONSerialization.data(withJSONObject: try XCTUnwrap(record["input"])).write(to: input)
            let (status, output) = runTool(["predict", "--model", Self.fixture(name + ".keras"), "--json", input.path])
            XCTAssertEqual(status, 0, output)
            let printed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[Double]], output)
            let expected = try XCTUnwrap(record["output"] as? [[Double]])
            XCTAssertEqual(printed.map(\.count), expected.map(\.count))
            for (row, expectedRow) in zip(printed, expected) {
                for (value, reference) in zip(row, expectedRow) { XCTAssertEqual(value, reference, accuracy: 1e-5, name) }
            }
        }
    }

    func testPredictJSONReadsAModelDirectoryToo() throws {
        let directory = try temporaryDirectory(self)
        let model = try Sequential.load(keras: URL(fileURLWithPath: Self.fixture("bidirectional_sum.keras")))
        try model.save(to: directory.appendingPathComponent("model"))
        let input = directory.appendingPathComponent("input.json")
        try Data("[[[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0.5, -0.5, 2]]]".utf8).write(to: input)
        let fromKeras = runTool(["predict", "--model", Self.fixture("bidirectional_sum.keras"), "--json", input.path])
        let fromDirectory = runTool(["predict", "--model", directory.appendingPathComponent("model").path, "--json", input.path])
        XCTAssertEqual(fromDirectory.status, 0, fromDirectory.output)
        XCTAssertEqual(fromDirectory.output, fromKeras.output)
        // Bidirectional(LSTM(4), return_sequences) -> Dense(2): one sample of 5 steps of 2 values.
        let printed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(fromKeras.output.utf8)) as? [[[Double]]])
        XCTAssertEqual(printed.map { $0.map(\.count) }, [[2, 2, 2, 2, 2]])
    }

    func testAFunctionalKerasFileTakesOneArrayPerInput() throws {
        let record = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Self.fixture("functional_shared.json")))) as? [String: Any])
        let input = try temporaryDirectory(self).appendingPathComponent("inputs.json")
        try JSONSerialization.data(withJSONObject: try XCTUnwrap(record["input"])).write(to: input)
        let (status, output) = runTool(["predict", "--model", Self.fixture("functional_shared.keras"), "--json", input.path])
        XCTAssertEqual(status, 0, output)
        let printed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[Double]], output)
        let expected = try XCTUnwrap(record["output"] as? [[Double]])
        XCTAssertEqual(printed.map(\.count), expected.map(\.count))
        for (row, expectedRow) in zip(printed, expected) {
            for (value, reference) in zip(row, expectedRow) { XCTAssertEqual(value, reference, accuracy: 1e-5) }
        }
        let summary = runTool(["summary", "--model", Self.fixture("functional_shared.keras")])
        XCTAssertEqual(summary.status, 0, summary.output)
        XCTAssertTrue(summary.output.contains("Total params: 166"), summary.output)
    }

    func testAFunctionalModelDirectoryPredictsAndSummarizesAsItsKerasFile() throws {
        let record = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Self.fixture("functional_shared.json")))) as? [String: Any])
        let folder = try temporaryDirectory(self)
        let input = folder.appendingPathComponent("inputs.json"), directory = folder.appendingPathComponent("model")
        try JSONSerialization.data(withJSONObject: try XCTUnwrap(record["input"])).write(to: input)
        try Model.load(keras: URL(fileURLWithPath: Self.fixture("functional_shared.keras"))).save(to: directory)
        let fromKeras = runTool(["predict", "--model", Self.fixture("functional_shared.keras"), "--json", input.path])
        let fromDirectory = runTool(["predict", "--model", directory.path, "--json", input.path])
        XCTAssertEqual(fromDirectory.status, 0, fromDirectory.output)
        XCTAssertEqual(fromDirectory.output, fromKeras.output)
        let summary = runTool(["summary", "--model", directory.path])
        XCTAssertEqual(summary.status, 0, summary.output)
        XCTAssertEqual(summary.output, runTool(["summary", "--model", Self.fixture("functional_shared.keras")]).output)
        XCTAssertTrue(summary.output.contains("Total params: 166"), summary.output)

        let csv = folder.appendingPathComponent("series.csv")
        try "a,b\n1,2\n3,4\n".write(to: csv, atomically: true, encoding: .utf8)
        let (status, output) = runTool(["predict", csv.path, "--model", directory.path])
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.contains("holds a functional model: its inputs come from --json"), output)
    }

    func testPredictJSONNamesTheMisshapenElement() throws {
        let input = try temporaryDirectory(self).appendingPathComponent("bad.json")
        try Data("[[[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 3], [4, 5]]]".utf8).write(to: input)
        let (status, output) = runTool(["predict", "--model", Self.fixture("lstm_gru_dense.keras"), "--json", input.path])
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.hasPrefix("error: bad.json[0][4]: expected an array of 3, found an array of 2 "
                                       + "(the model takes [batch, 5, 3])"), output)
    }

    func testPredictFromCSVWithAKerasModelFeedsTheColumnsAsTheyAre() throws {
        let csv = try temporaryDirectory(self).appendingPathComponent("series.csv")
        // Keras' output for the fixture's second sample is the last window of these rows.
        let record = try XCTUnwrap(JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Self.fixture("lstm_gru_dense.json")))) as? [String: Any])
        let samples = try XCTUnwrap(record["input"] as? [[[Double]]])
        let rows = samples[0] + samples[1]
        try Data(("a,b,c\n" + rows.map { $0.map { "\($0)" }.joined(separator: ",") }.joined(separator: "\n")).utf8)
            .write(to: csv)
        let (status, output) = runTool(["predict", csv.path, "--model", Self.fixture("lstm_gru_dense.keras"),
                                        "--windows", "6"])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n")
        XCTAssertEqual(lines.count, 7, output)
        let expected = try XCTUnwrap(record["output"] as? [[Double]])
        for (line, reference) in [(lines[1], expected[0]), (lines[6], expected[1])] {
            let values = line.split(separator: ":")[1].split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            XCTAssertEqual(values.count, 2, output)
            for (value, expectedValue) in zip(values, reference) { XCTAssertEqual(value, expectedValue, accuracy: 1e-5) }
        }
    }
}
