import Datasets
import Foundation
import Graph
import Layers
import XCTest

final class MackeyGlassTests: XCTestCase {
    func testSeriesIsDeterministicAndStaysInItsChaoticRange() {
        let series = MackeyGlass.series(length: 3000)
        XCTAssertEqual(series.count, 3000)
        XCTAssertEqual(series, MackeyGlass.series(length: 3000))
        // τ = 17 wanders over about 0.4…1.3 and never settles.
        XCTAssertGreaterThan(series.min()!, 0.2)
        XCTAssertLessThan(series.min()!, 0.6)
        XCTAssertGreaterThan(series.max()!, 1.2)
        XCTAssertLessThan(series.max()!, 1.4)
        XCTAssertNotEqual(MackeyGlass.series(length: 100, tau: 30), Array(series.prefix(100)), "tau changes the series")
    }

    func testWithoutProductionTheSeriesDecaysExponentially() {
        // β = 0 leaves dx/dt = −γx: x(t) = 1.2 e^(−0.1 t), sampled at t = 0, 1, 2, …
        let series = MackeyGlass.series(length: 40, beta: 0, discard: 0)
        for (t, value) in series.enumerated() {
            XCTAssertEqual(value, Float(1.2 * exp(-0.1 * Double(t))), accuracy: 1e-6, "t = \(t)")
        }
    }

    func testTheFixedPointStaysPut() {
        // β / (1 + xⁿ) = γ at x = 1 for β = 0.2, γ = 0.1: a constant history at 1 never moves.
        XCTAssertEqual(MackeyGlass.series(length: 50, initialValue: 1, discard: 10), Array(repeating: 1, count: 50))
    }

    func testSamplingIntervalTakesEveryNthValueOfTheSameIntegration() {
        let fine = MackeyGlass.series(length: 100, discard: 200)
        let coarse = MackeyGlass.series(length: 50, timeStep: 2, discard: 100)
        XCTAssertEqual(coarse, stride(from: 0, to: 100, by: 2).map { fine[$0] })
    }

    func testHalvingTheIntegrationStepBarelyChangesTheSeries() {
        // Over 150 time units, before chaos amplifies differences, the fourth-order steps agree.
        let coarse = MackeyGlass.series(length: 150, discard: 0)
        let fine = MackeyGlass.series(length: 150, discard: 0, integrationStep: 0.05)
        let worst = zip(coarse, fine).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(worst, 1e-4)
    }

    /// An echo state network fitted in closed form on 2,000 steps predicts the next value of the
    /// following 1,000 steps far better than persistence (repeating the last value).
    ///
    /// The series is sampled every time unit; the readout sees steps 100..<2000 (after a washout of
    /// 100), and the evaluation runs the reservoir on through steps 2000..<3000 from where training left it.
    func testEchoStateNetworkPredictsOneStepAheadFarBetterThanPersistence() throws {
        let (train, test) = (2000, 1000)
        let series = MackeyGlass.series(length: train + test + 1)
        let inputs = Tensor(shape: [1, train + test, 1], scalars: Array(series[0..<(train + test)]))
        let targets = Tensor(shape: [1, train + test, 1], scalars: Array(series[1...]))
        let esn = EchoStateNetwork(reservoirSize: 300, outputSize: 1, spectralRadius: 0.9, leakRate: 1,
                                   returnSequences: true, seed: 42)
        try esn.fitReadout(inputs: inputs.slice(along: 1, 0..<train), targets: targets.slice(along: 1, 0..<train),
                           ridge: 1e-8, washout: 100)
        let predictions = try esn.readout(of: esn.reservoirStates(for: inputs)).scalars

        let evaluated = train..<(train + test)
        let truth = evaluated.map { Double(series[$0 + 1]) }
        let mean = truth.reduce(0, +) / Double(test)
        let deviation = (truth.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(test)).squareRoot()
        func normalisedError(_ guesses: [Double]) -> Double {
            (zip(guesses, truth).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Double(test)).squareRoot() / deviation
        }
        let esnError = normalisedError(evaluated.map { Double(predictions[$0]) })
        let persistenceError = normalisedError(evaluated.map { Double(series[$0]) })
        print("NRMSE: echo state network \(esnError), persistence \(persistenceError), ratio \(persistenceError / esnError)")
        XCTAssertGreaterThanOrEqual(persistenceError / esnError, 10)
        XCTAssertLessThan(esnError, 0.005)
    }
}
