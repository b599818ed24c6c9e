import Datasets
import Graph
import TestSupport
import XCTest

final class ScalerTests: XCTestCase {
    /// Column 0 spans 1...5, column 1 spans 10...30.
    let training = Tensor([[1, 10], [3, 30], [5, 20]])

    func testMinMaxScalesEachColumnToUnitRange() throws {
        var scaler = MinMaxScaler()
        XCTAssertFalse(scaler.isFitted)
        try scaler.fit(training)
        XCTAssertEqual(scaler.featureCount, 2)
        XCTAssertEqual(scaler.minimums, [1, 10])
        XCTAssertEqual(scaler.maximums, [5, 30])
        assertClose(try scaler.transform(training), shape: [3, 2], [0, 0, 0.5, 1, 1, 0.5], tolerance: 1e-6, "scaled")
        // Values outside the training range map outside the feature range, as in scikit-learn.
        assertClose(try scaler.transform(Tensor([[7, 0]])), shape: [1, 2], [1.5, -0.5], tolerance: 1e-6, "outside")
    }

    func testMinMaxCustomRangeAndAnyRank() throws {
        var scaler = MinMaxScaler(featureRange: -1...1)
        let scaled = try scaler.fitTransform(training)
        assertClose(scaled, shape: [3, 2], [-1, -1, 0, 1, 1, 0], tolerance: 1e-6, "scaled to -1...1")
        // Windows [count, pastSteps, features] share the last axis with the series.
        let windows = Tensor(shape: [2, 2, 2], scalars: [1, 10, 3, 30, 5, 20, 2, 15])
        assertClose(try scaler.transform(windows), shape: [2, 2, 2], [-1, -1, 0, 1, 1, 0, -0.5, -0.5],
                    tolerance: 1e-6, "rank 3")
        assertClose(try scaler.inverseTransform(try scaler.transform(windows)), windows, tolerance: 1e-6, "round trip")
    }

    func testMinMaxConstantColumnMapsToLowerBoundAndInverts() throws {
        let constant = Tensor([[2, 7], [4, 7], [6, 7]])
        var scaler = MinMaxScaler(featureRange: -1...1)
        let scaled = try scaler.fitTransform(constant)
        assertClose(scaled, shape: [3, 2], [-1, -1, 0, -1, 1, -1], tolerance: 1e-6, "constant column at lower bound")
        XCTAssertTrue(scaled.scalars.allSatisfy(\.isFinite))
        assertClose(try scaler.inverseTransform(scaled), constant, tolerance: 1e-6, "round trip")
        // Off the constant, the column moves by (x - 7) * (upper - lower), which keeps the map invertible.
        assertClose(try scaler.transform(Tensor([[2, 8]])), shape: [1, 2], [-1, 1], tolerance: 1e-6, "off constant")
        assertClose(try scaler.inverseTransform(Tensor([[-1, 1]])), shape: [1, 2], [2, 8], tolerance: 1e-6, "inverse")
    }

    func testMinMaxInverseOfOneTargetColumn() throws {
        var scaler = MinMaxScaler()
        try scaler.fit(training)
        // Predictions of column 1 only: [count, futureSteps, 1].
        let predictions = Tensor(shape: [2, 2, 1], scalars: [0, 0.25, 0.5, 1])
        assertClose(try scaler.inverseTransform(predictions, column: 1), shape: [2, 2, 1], [10, 15, 20, 30],
                    tolerance: 1e-6, "column 1")
        assertClose(try scaler.inverseTransform(Tensor([0.5, 1]), column: 0), shape: [2], [3, 5],
                    tolerance: 1e-6, "column 0, rank 1")
        let swapped = Tensor([[1, 0.5], [0, 0]])
        assertClose(try scaler.inverseTransform(swapped, columns: [1, 0]), shape: [2, 2], [30, 3, 10, 1],
                    tolerance: 1e-6, "columns [1, 0]")
        assertClose(try scaler.transform(Tensor([[30, 3]]), columns: [1, 0]), shape: [1, 2], [1, 0.5],
                    tolerance: 1e-6, "transform columns [1, 0]")
    }

    func testStandardScalerUsesPopulationStandardDeviation() throws {
        // Column 0: mean 2.5, population variance 1.25. Column 1: constant 5.
        let data = Tensor([[1, 5], [2, 5], [3, 5], [4, 5]])
        var scaler = StandardScaler()
        try scaler.fit(data)
        XCTAssertEqual(scaler.means, [2.5, 5])
        XCTAssertEqual(scaler.standardDeviations?[0] ?? 0, 1.1180340, accuracy: 1e-6)
        XCTAssertEqual(scaler.standardDeviations?[1], 0)
        let scaled = try scaler.transform(data)
        assertClose(scaled, shape: [4, 2], [-1.3416408, 0, -0.4472136, 0, 0.4472136, 0, 1.3416408, 0],
                    tolerance: 1e-6, "standardized")
        assertClose(try scaler.inverseTransform(scaled), data, tolerance: 1e-6, "round trip")
        // A zero standard deviation divides by 1.
        assertClose(try scaler.transform(Tensor([[2.5, 7]])), shape: [1, 2], [0, 2], tolerance: 1e-6, "scale 1")
        assertClose(try scaler.inverseTransform(Tensor([[2]]), columns: [0]), shape: [1, 1], [4.7360680],
                    tolerance: 1e-6, "inverse of column 0")
        assertClose(try scaler.inverseTransform(Tensor([-2, 0]), column: 1), shape: [2], [3, 5],
                    tolerance: 1e-6, "inverse of constant column")
    }

    func testStandardScalerIsAccurateForLargeOffsets() throws {
        // Accumulating in Float would lose the spread of values near 10⁵.
        let values: [Float] = (0..<10_000).map { 100_000 + Float($0 % 3) }
        var scaler = StandardScaler()
        try scaler.fit(Tensor(shape: [10_000, 1], scalars: values))
        // Mean of 0, 1, 2 repeating (10,000 = 3,333 × 3 + 1, the extra is 0): 9999 / 10000.
        XCTAssertEqual(scaler.means?[0] ?? 0, 100_000.9999, accuracy: 0.01)
        XCTAssertEqual(scaler.standardDeviations?[0] ?? 0, 0.8165, accuracy: 1e-3)
    }

    func testRoundTripsOnRandomData() throws {
        let data = Tensor.randomUniform([50, 4, 3], in: -20...80, seed: 3)
        var minMax = MinMaxScaler(featureRange: 0...1)
        var standard = StandardScaler()
        let scaledMinMax = try minMax.fitTransform(data)
        let scaledStandard = try standard.fitTransform(data)
        XCTAssertEqual(scaledMinMax.scalars.min() ?? -1, 0, accuracy: 1e-6)
        XCTAssertEqual(scaledMinMax.scalars.max() ?? -1, 1, accuracy: 1e-6)
        assertClose(try minMax.inverseTransform(scaledMinMax), data, tolerance: 1e-6, "min-max round trip")
        assertClose(try standard.inverseTransform(scaledStandard), data, tolerance: 1e-6, "standard round trip")
        // Each standardized column has mean 0 and population variance 1.
        let columns = scaledStandard.reshaped(to: [200, 3])
        for column in 0..<3 {
            let values = (0..<200).map { Double(columns[$0, column]) }
            let mean = values.reduce(0, +) / 200
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 200
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(variance, 1, accuracy: 1e-4)
        }
    }

    func testMisuseThrows() throws {
        let unfitted = MinMaxScaler()
        assertThrows(.notFitted, mentioning: ["fit"]) { try unfitted.transform(training) }
        assertThrows(.notFitted) { try StandardScaler().inverseTransform(training) }
        assertThrows(.notFitted) { try unfitted.inverseTransform(training, column: 0) }

        var scaler = StandardScaler()
        try scaler.fit(training)
        assertThrows(.featureCountMismatch(expected: 2, actual: 3), mentioning: ["2", "3"]) {
            try scaler.transform(Tensor([[1, 2, 3]]))
        }
        assertThrows(.featureCountMismatch(expected: 2, actual: 1)) {
            try scaler.inverseTransform(Tensor([[1]]), columns: [0, 1])
        }
        assertThrows(.columnOutOfRange(column: 2, featureCount: 2), mentioning: ["2"]) {
            try scaler.inverseTransform(Tensor([1]), column: 2)
        }
        assertThrows(.noSamples(shape: [])) { try scaler.transform(Tensor(scalar: 1)) }

        var fresh = MinMaxScaler()
        assertThrows(.noSamples(shape: [0, 2])) { try fresh.fit(Tensor.zeros([0, 2])) }
        assertThrows(.noSamples(shape: [])) { try fresh.fit(Tensor(scalar: 3)) }
        assertThrows(.nonFinite(row: 1, column: 1), mentioning: ["row 1", "column 1"]) {
            try fresh.fit(Tensor([[1, 2], [3, .nan]]))
        }
        XCTAssertFalse(fresh.isFitted)
        var degenerate = MinMaxScaler(featureRange: 1...1)
        assertThrows(.invalidFeatureRange(lower: 1, upper: 1)) { try degenerate.fit(training) }
    }
}
