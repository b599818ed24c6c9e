import Foundation
import XCTest
@testable import UnrollCLI

final class ForecastTests: XCTestCase {
    /// The series' first and last values and total, as in the published data.
    func testEmbeddedSeriesIsTheAirlineData() {
        let series = EmbeddedData.airlinePassengers
        XCTAssertEqual(series.count, 144)
        XCTAssertEqual(series.first, 112)
        XCTAssertEqual(series.last, 432)
        XCTAssertEqual(series.reduce(0, +), 40_363)
        XCTAssertEqual(EmbeddedData.airlineMonth(0), "1949-01")
        XCTAssertEqual(EmbeddedData.airlineMonth(143), "1960-12")
    }

    /// The baselines computed by hand: 131 windows of 12 ratios, 87 train (floor of 131 × 2/3), so the test
    /// months are 100..<144 (1957-05 to 1960-12).
    func testBaselinesMatchAnIndependentComputation() throws {
        let forecaster = try AirlineForecast(settings: .init(epochs: 1))
        XCTAssertEqual(forecaster.trainingWindows.count, 87)
        XCTAssertEqual(forecaster.testWindows.count, 44)
        let result = try forecaster.evaluate()
        XCTAssertEqual(result.months, Array(100..<144))
        let y = EmbeddedData.airlinePassengers.map(Double.init)
        var naive = 0.0, seasonal = 0.0
        for t in 100..<144 {
            naive += (y[t] - y[t - 1]) * (y[t] - y[t - 1])
            seasonal += (y[t] - y[t - 12]) * (y[t] - y[t - 12])
        }
        XCTAssertEqual(Double(result.naiveRootMeanSquaredError), (naive / 44).squareRoot(), accuracy: 1e-4)
        XCTAssertEqual(Double(result.seasonalNaiveRootMeanSquaredError), (seasonal / 44).squareRoot(), accuracy: 1e-4)
        // The same numbers from numpy: 49.4092 and 42.5868.
        XCTAssertEqual(result.naiveRootMeanSquaredError, 49.4092, accuracy: 1e-3)
        XCTAssertEqual(result.seasonalNaiveRootMeanSquaredError, 42.5868, accuracy: 1e-3)
    }

    /// The forecast undoes the ratio transform: predicting a zero log-ratio gives the naive forecast.
    func testForecastIsThePreviousMonthTimesTheExponentialOfTheRatio() throws {
        let forecaster = try AirlineForecast(settings: .init(epochs: 1))
        // A zero kernel and a bias equal to the standardized zero ratio make the Dense head predict r = 0.
        let dense = forecaster.model.layers[1].parameters
        dense[0].value = .zeros(dense[0].shape)
        let zeroRatio = try forecaster.scaler.transform(.zeros([1, 1])).scalars[0]
        dense[1].value = .init(shape: [1], scalars: [zeroRatio])
        let result = try forecaster.evaluate()
        for (forecast, naive) in zip(result.forecast, result.naiveForecast) {
            XCTAssertEqual(forecast, naive, accuracy: 1e-3)
        }
    }

    func testScalerSeesOnlyTheTrainingRatios() throws {
        let forecaster = try AirlineForecast(settings: .init(epochs: 1))
        let y = EmbeddedData.airlinePassengers.map(Double.init)
        // Training windows 0..<87 cover ratios 0..<99 (log(y[1]/y[0]) ... log(y[99]/y[98])).
        let ratios = (1...99).map { Foundation.log(y[$0] / y[$0 - 1]) }
        let mean = ratios.reduce(0, +) / 99
        XCTAssertEqual(Double(forecaster.scaler.means![0]), mean, accuracy: 1e-6)
    }

    func testShortTrainingLowersTheLoss() throws {
        let forecaster = try AirlineForecast(settings: .init(epochs: 15, hiddenSize: 8))
        let losses = try forecaster.train()
        XCTAssertEqual(losses.count, 15)
        XCTAssertLessThan(losses.last!, 0.6 * losses.first!, "\(losses)")
    }

    func testNonPositiveSeriesIsRejected() {
        XCTAssertThrowsError(try AirlineForecast(series: [1, 2, 0, 3] + Array(repeating: 1, count: 40))) { error in
            XCTAssertEqual("\(error)", "series[2] = 0.0 is invalid: log-ratios need positive, finite values")
        }
    }

    func testDefaultJobShortRunPrintsTheComparisonAndWritesThePlots() throws {
        let directory = try temporaryDirectory(self)
        let (status, output) = runTool(["--epochs", "2", "--units", "4", "--out", directory.path])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Split: 87 training windows, 44 test months (1957-05 to 1960-12)."), output)
        XCTAssertTrue(output.contains("│ lstm (LSTM)                     │ (None, 4)              │            96 │"), output)
        XCTAssertTrue(output.contains("  epoch 1/2  loss "), output)
        XCTAssertTrue(output.contains("  epoch 2/2  loss "), output)
        XCTAssertTrue(output.contains("  naive (last month)                49.41\n"), output)
        XCTAssertTrue(output.contains("  seasonal naive (a year before)    42.59\n"), output)
        for name in ["loss.svg", "forecast.svg"] {
            let svg = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""), name)
            XCTAssertTrue(svg.hasSuffix("</svg>\n"), name)
        }
        let forecast = try String(contentsOf: directory.appendingPathComponent("forecast.svg"), encoding: .utf8)
        XCTAssertEqual(forecast.components(separatedBy: "<polyline").count - 1, 3)
        XCTAssertTrue(forecast.contains("naive (RMSE 49.4)"))
    }

    func testPlotTicksAreRound() {
        XCTAssertEqual(SVGPlot.niceTicks(from: 104, to: 622), [0, 200, 400, 600, 800])
        XCTAssertEqual(SVGPlot.niceTicks(from: 0, to: 1), [0, 0.2, 0.4, 0.6, 0.8, 1.0])
        XCTAssertEqual(SVGPlot.niceTicks(from: 1949, to: 1961), [1945, 1950, 1955, 1960, 1965])
        XCTAssertEqual(SVGPlot.logarithmicTicks(from: -2.3, to: 0.1), [-2, -1, 0])
    }
}
