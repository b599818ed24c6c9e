import XCTest
import Datasets
import Graph
import Layers
import Train

/// Reproduces the two result tables of Docs/Tutorial.md (the ramp `0.1 … 3.0`, windows of 3 past values, 500
/// epochs of Adam(0.01) from the seed sequence 7), so the numbers printed there are checked, not copied.
/// The tolerances are a few units in the tables' last printed digit: a machine without AVX2 takes the portable
/// kernels, whose different rounding 500 epochs can carry that far.
final class TutorialTests: XCTestCase {
    private enum Architecture: CaseIterable {
        case dense, simpleRNN, stackedSimpleRNN, lstm, gru
    }

    private struct Row {
        var parameterCount: Int
        var finalTrainingLoss: Float
        var testMeanAbsoluteError: Float
        var predictionAfterRamp: Float
    }

    private func run(_ architecture: Architecture, levelFree: Bool) throws -> Row {
        let series = (1...30).map { Float($0) / 10 }
        let (train, test) = try Windows(series: series, pastSteps: 3, futureSteps: 1).split(trainFraction: 0.8)
        XCTAssertEqual([train.count, test.count], [21, 6])
        Initializers.resetSeedSequence(to: 7)
        let model = Sequential()
        switch architecture {
        case .dense:
            model.add(Dense(outputSize: 8, activation: .relu, inputShape: [3]))
        case .simpleRNN:
            model.add(SimpleRNN(hiddenSize: 16, inputShape: [3, 1]))
        case .stackedSimpleRNN:
            model.add(SimpleRNN(hiddenSize: 16, inputShape: [3, 1], returnSequences: true))
            model.add(SimpleRNN(hiddenSize: 16))
        case .lstm:
            model.add(LSTM(hiddenSize: 16, inputShape: [3, 1]))
        case .gru:
            model.add(GRU(hiddenSize: 16, inputShape: [3, 1]))
        }
        model.add(Dense(outputSize: 1))
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError])

        // Level-free windows subtract each window's last value from its inputs and target.
        func prepared(_ inputs: Tensor, _ targets: Tensor) -> (Tensor, Tensor) {
            let count = inputs.shape[0]
            var x = inputs, y = targets
            if levelFree {
                let last = inputs.slice(along: 1, 2..<3)
                x = inputs - last
                y = targets - last.reshaped(to: [count, 1])
            }
            return (architecture == .dense ? x.reshaped(to: [count, 3]) : x, y)
        }
        let (x, y) = prepared(train.inputs, train.flattenedTargets)
        let (testX, testY) = prepared(test.inputs, test.flattenedTargets)
        let history = try model.fit(x, y, epochs: 500, batchSize: 32, verbose: .silent)
        let ramp = Tensor(shape: [1, 3, 1], scalars: [2.8, 2.9, 3.0])
        let (query, _) = prepared(ramp, Tensor(shape: [1, 1], scalars: [0]))
        let offset: Float = levelFree ? 3.0 : 0
        return Row(parameterCount: model.parameters.reduce(0) { $0 + $1.value.scalars.count },
                   finalTrainingLoss: try XCTUnwrap(history["loss"].last),
                   testMeanAbsoluteError: try XCTUnwrap(model.evaluate(testX, testY)["mae"]),
                   predictionAfterRamp: try model.predict(query).scalars[0] + offset)
    }

    private func assertRow(_ row: Row, _ expected: Row, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(row.parameterCount, expected.parameterCount, label, file: file, line: line)
        XCTAssertEqual(row.finalTrainingLoss, expected.finalTrainingLoss, accuracy: 3e-5, label, file: file, line: line)
        XCTAssertEqual(row.testMeanAbsoluteError, expected.testMeanAbsoluteError, accuracy: 2e-3, label, file: file, line: line)
        XCTAssertEqual(row.predictionAfterRamp, expected.predictionAfterRamp, accuracy: 2e-3, label, file: file, line: line)
    }

    func testRawWindowsMatchTheTutorialTable() throws {
        let expected: [Architecture: Row] = [
            .dense: Row(parameterCount: 41, finalTrainingLoss: 0, testMeanAbsoluteError: 0, predictionAfterRamp: 3.100),
            .simpleRNN: Row(parameterCount: 305, finalTrainingLoss: 0.00003, testMeanAbsoluteError: 0.1105, predictionAfterRamp: 2.842),
            .stackedSimpleRNN: Row(parameterCount: 833, finalTrainingLoss: 0.00003, testMeanAbsoluteError: 0.0960, predictionAfterRamp: 2.873),
            .lstm: Row(parameterCount: 1169, finalTrainingLoss: 0.00020, testMeanAbsoluteError: 0.1097, predictionAfterRamp: 2.877),
            .gru: Row(parameterCount: 929, finalTrainingLoss: 0.00008, testMeanAbsoluteError: 0.0906, predictionAfterRamp: 2.913),
        ]
        for architecture in Architecture.allCases {
            assertRow(try run(architecture, levelFree: false), expected[architecture]!, "\(architecture) raw")
        }
    }

    func testLevelFreeWindowsExtrapolateExactly() throws {
        let parameterCounts: [Architecture: Int] = [.dense: 41, .simpleRNN: 305, .stackedSimpleRNN: 833, .lstm: 1169, .gru: 929]
        for architecture in Architecture.allCases {
            let expected = Row(parameterCount: parameterCounts[architecture]!, finalTrainingLoss: 0,
                               testMeanAbsoluteError: 0, predictionAfterRamp: 3.1)
            assertRow(try run(architecture, levelFree: true), expected, "\(architecture) level-free")
        }
    }
}
