import Datasets
import Graph
import TestSupport
import XCTest

/// Asserts that `body` throws exactly `expected`, and that the error's description mentions each of
/// `mentions`.
func assertThrows<T>(_ expected: DataError, mentioning mentions: [String] = [], _ body: () throws -> T,
                     file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected \(expected), nothing was thrown", file: file, line: line)
    } catch let error as DataError {
        XCTAssertEqual(error, expected, file: file, line: line)
        for mention in mentions {
            XCTAssertTrue(error.description.contains(mention),
                          "'\(error.description)' does not mention '\(mention)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected \(expected), got \(error)", file: file, line: line)
    }
}

final class WindowingTests: XCTestCase {
    /// 3, 5, 7, ..., 21: ten values, so every window's contents can be written down by hand.
    let oddSeries: [Float] = [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]

    func testOneStepHorizonGivesSixWindows() throws {
        let windows = try Windows(series: oddSeries, pastSteps: 4, futureSteps: 1)
        XCTAssertEqual(windows.count, 6)
        XCTAssertEqual(windows.pastSteps, 4)
        XCTAssertEqual(windows.futureSteps, 1)
        XCTAssertEqual(windows.featureCount, 1)
        XCTAssertEqual(windows.startSteps, [0, 1, 2, 3, 4, 5])
        assertClose(windows.inputs, shape: [6, 4, 1], [
            3, 5, 7, 9,
            5, 7, 9, 11,
            7, 9, 11, 13,
            9, 11, 13, 15,
            11, 13, 15, 17,
            13, 15, 17, 19,
        ], tolerance: 0, "inputs")
        assertClose(windows.targets, shape: [6, 1, 1], [11, 13, 15, 17, 19, 21], tolerance: 0, "targets")
    }

    func testTwoStepHorizonGivesFiveWindows() throws {
        let windows = try Windows(series: oddSeries, pastSteps: 4, futureSteps: 2)
        XCTAssertEqual(windows.count, 5)
        assertClose(windows.inputs, shape: [5, 4, 1], [
            3, 5, 7, 9,
            5, 7, 9, 11,
            7, 9, 11, 13,
            9, 11, 13, 15,
            11, 13, 15, 17,
        ], tolerance: 0, "inputs")
        assertClose(windows.targets, shape: [5, 2, 1], [
            11, 13,
            13, 15,
            15, 17,
            17, 19,
            19, 21,
        ], tolerance: 0, "targets")
        assertClose(windows.flattenedTargets, shape: [5, 2], [11, 13, 13, 15, 15, 17, 17, 19, 19, 21],
                    tolerance: 0, "flattened targets")
    }

    func testWindowThatUsesTheWholeSeries() throws {
        let windows = try Windows(series: oddSeries, pastSteps: 7, futureSteps: 3)
        assertClose(windows.inputs, shape: [1, 7, 1], [3, 5, 7, 9, 11, 13, 15], tolerance: 0, "inputs")
        assertClose(windows.targets, shape: [1, 3, 1], [17, 19, 21], tolerance: 0, "targets")
    }

    /// Two features per step: a step counter and ten times it, so a swapped or shifted column shows.
    let twoFeatureSeries = Tensor([[1, 10], [2, 20], [3, 30], [4, 40], [5, 50], [6, 60]])

    func testMultivariateWindowsKeepFeatureOrder() throws {
        let windows = try Windows(series: twoFeatureSeries, pastSteps: 3, futureSteps: 2)
        XCTAssertEqual(windows.count, 2)
        XCTAssertEqual(windows.targetColumns, [0, 1])
        assertClose(windows.inputs, shape: [2, 3, 2], [
            1, 10, 2, 20, 3, 30,
            2, 20, 3, 30, 4, 40,
        ], tolerance: 0, "inputs")
        assertClose(windows.targets, shape: [2, 2, 2], [
            4, 40, 5, 50,
            5, 50, 6, 60,
        ], tolerance: 0, "targets")
        assertClose(windows.flattenedTargets, shape: [2, 4], [4, 40, 5, 50, 5, 50, 6, 60], tolerance: 0,
                    "flattened targets")
    }

    func testTargetColumnsSelectAndOrderTargets() throws {
        let second = try Windows(series: twoFeatureSeries, pastSteps: 2, futureSteps: 1, targetColumns: [1])
        XCTAssertEqual(second.count, 4)
        assertClose(second.inputs, shape: [4, 2, 2], [
            1, 10, 2, 20,
            2, 20, 3, 30,
            3, 30, 4, 40,
            4, 40, 5, 50,
        ], tolerance: 0, "inputs keep every feature")
        assertClose(second.targets, shape: [4, 1, 1], [30, 40, 50, 60], tolerance: 0, "column 1 only")

        let swapped = try Windows(series: twoFeatureSeries, pastSteps: 4, futureSteps: 2, targetColumns: [1, 0])
        XCTAssertEqual(swapped.targetColumns, [1, 0])
        assertClose(swapped.targets, shape: [1, 2, 2], [50, 5, 60, 6], tolerance: 0, "columns in the order asked")
    }

    func testStrideSkipsWindowStarts() throws {
        let series: [Float] = (0..<10).map(Float.init)
        let everyOther = try Windows(series: series, pastSteps: 3, futureSteps: 2, stride: 2)
        // floor((10 - 3 - 2) / 2) + 1 = 3 windows, starting at steps 0, 2 and 4.
        XCTAssertEqual(everyOther.count, 3)
        XCTAssertEqual(everyOther.startSteps, [0, 2, 4])
        assertClose(everyOther.inputs, shape: [3, 3, 1], [0, 1, 2, 2, 3, 4, 4, 5, 6], tolerance: 0, "inputs")
        assertClose(everyOther.targets, shape: [3, 2, 1], [3, 4, 5, 6, 7, 8], tolerance: 0, "targets")

        let everyThird = try Windows(series: series, pastSteps: 3, futureSteps: 2, stride: 3)
        XCTAssertEqual(everyThird.count, 2)
        assertClose(everyThird.targets, shape: [2, 2, 1], [3, 4, 6, 7], tolerance: 0, "stride 3 targets")

        let strideTwoMultivariate = try Windows(series: twoFeatureSeries, pastSteps: 1, futureSteps: 1,
                                                targetColumns: [1], stride: 2)
        assertClose(strideTwoMultivariate.inputs, shape: [3, 1, 2], [1, 10, 3, 30, 5, 50], tolerance: 0, "inputs")
        assertClose(strideTwoMultivariate.targets, shape: [3, 1, 1], [20, 40, 60], tolerance: 0, "targets")
    }

    func testBadSizesThrowTheMatchingError() {
        let series = Tensor(shape: [10, 1], scalars: oddSeries)
        assertThrows(.invalidPastSteps(0), mentioning: ["pastSteps", "0"]) {
            try Windows(series: series, pastSteps: 0, futureSteps: 1)
        }
        assertThrows(.invalidFutureSteps(-1), mentioning: ["futureSteps", "-1"]) {
            try Windows(series: series, pastSteps: 2, futureSteps: -1)
        }
        assertThrows(.invalidStride(0), mentioning: ["stride", "0"]) {
            try Windows(series: series, pastSteps: 2, futureSteps: 1, stride: 0)
        }
        assertThrows(.seriesTooShort(length: 10, pastSteps: 8, futureSteps: 3), mentioning: ["10", "8", "3", "11"]) {
            try Windows(series: series, pastSteps: 8, futureSteps: 3)
        }
        assertThrows(.seriesTooShort(length: 0, pastSteps: 1, futureSteps: 1)) {
            try Windows(series: [], pastSteps: 1, futureSteps: 1)
        }
        assertThrows(.columnOutOfRange(column: 2, featureCount: 2), mentioning: ["2"]) {
            try Windows(series: twoFeatureSeries, pastSteps: 2, futureSteps: 1, targetColumns: [0, 2])
        }
        assertThrows(.columnOutOfRange(column: -1, featureCount: 2)) {
            try Windows(series: twoFeatureSeries, pastSteps: 2, futureSteps: 1, targetColumns: [-1])
        }
        assertThrows(.noTargetColumns) {
            try Windows(series: twoFeatureSeries, pastSteps: 2, futureSteps: 1, targetColumns: [])
        }
        assertThrows(.invalidSeriesShape([10]), mentioning: ["[10]"]) {
            try Windows(series: Tensor(oddSeries), pastSteps: 2, futureSteps: 1)
        }
        assertThrows(.invalidSeriesShape([2, 5, 1])) {
            try Windows(series: series.reshaped(to: [2, 5, 1]), pastSteps: 2, futureSteps: 1)
        }
    }

    func testNonFiniteValueIsReportedWithRowAndColumn() {
        var series = twoFeatureSeries
        series[4, 1] = .nan
        assertThrows(.nonFinite(row: 4, column: 1), mentioning: ["row 4", "column 1"]) {
            try Windows(series: series, pastSteps: 2, futureSteps: 1)
        }
        var infinite = twoFeatureSeries
        infinite[2, 0] = -.infinity
        assertThrows(.nonFinite(row: 2, column: 0)) {
            try Windows(series: infinite, pastSteps: 2, futureSteps: 1)
        }
    }

    func testSplitIsChronological() throws {
        let windows = try Windows(series: oddSeries, pastSteps: 4, futureSteps: 1)
        let (train, test) = try windows.split(trainFraction: 0.7)
        // floor(6 * 0.7) = 4 training windows; the last 2 are for testing.
        XCTAssertEqual(train.count, 4)
        XCTAssertEqual(test.count, 2)
        assertClose(train.targets, shape: [4, 1, 1], [11, 13, 15, 17], tolerance: 0, "train targets")
        assertClose(test.inputs, shape: [2, 4, 1], [11, 13, 15, 17, 13, 15, 17, 19], tolerance: 0, "test inputs")
        assertClose(test.targets, shape: [2, 1, 1], [19, 21], tolerance: 0, "test targets")
        XCTAssertEqual(test.startSteps, [4, 5])

        assertThrows(.invalidTrainFraction(1), mentioning: ["1"]) { try windows.split(trainFraction: 1) }
        assertThrows(.invalidTrainFraction(-0.5)) { try windows.split(trainFraction: -0.5) }
        assertThrows(.emptySplit(windowCount: 6, trainFraction: 0.1), mentioning: ["6", "0.1"]) {
            try windows.split(trainFraction: 0.1)
        }
        XCTAssertThrowsError(try windows.split(trainFraction: .nan))
    }

    func testSliceTakesASubrangeOfWindows() throws {
        let windows = try Windows(series: twoFeatureSeries, pastSteps: 2, futureSteps: 1, targetColumns: [0])
        let middle = try windows.slice(1..<3)
        XCTAssertEqual(middle.count, 2)
        XCTAssertEqual(middle.targetColumns, [0])
        XCTAssertEqual(middle.startSteps, [1, 2])
        assertClose(middle.inputs, shape: [2, 2, 2], [2, 20, 3, 30, 3, 30, 4, 40], tolerance: 0, "inputs")
        assertClose(middle.targets, shape: [2, 1, 1], [4, 5], tolerance: 0, "targets")

        assertThrows(.windowRangeOutOfBounds(lowerBound: 2, upperBound: 5, count: 4), mentioning: ["2..<5", "4"]) {
            try windows.slice(2..<5)
        }
    }

    func testLongSeriesWindowsMatchTheirSource() throws {
        let steps = 5_000, features = 3
        let series = Tensor.randomUniform([steps, features], in: -1...1, seed: 7)
        let windows = try Windows(series: series, pastSteps: 24, futureSteps: 6, targetColumns: [2, 0], stride: 5)
        XCTAssertEqual(windows.count, (steps - 24 - 6) / 5 + 1)
        let last = windows.count - 1, start = last * 5
        XCTAssertEqual(windows.inputs[last, 23, 1], series[start + 23, 1])
        XCTAssertEqual(windows.targets[last, 5, 0], series[start + 29, 2])
        XCTAssertEqual(windows.targets[last, 5, 1], series[start + 29, 0])
        XCTAssertEqual(windows.targets[7, 0, 1], series[7 * 5 + 24, 0])
    }
}
