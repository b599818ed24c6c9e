import Graph
import Layers
import Train
import XCTest

/// `ReduceLROnPlateau` against a hand-traced run of Keras' rules, and `fit(validationData:)`.
final class ReduceLROnPlateauTests: XCTestCase {
    func testLowersTheRateAfterPatienceWithCooldownAndFloor() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [2])])
        let optimizer = SGD(learningRate: 0.1)
        try model.compile(loss: .meanSquaredError, optimizer: optimizer)
        let callback = ReduceLROnPlateau(monitor: "loss", factor: 0.5, patience: 2, minimumDelta: 0.01, cooldown: 1,
                                         minimumLearningRate: 0.02)
        try callback.trainingWillBegin(model: model)
        // 0.895 is not an improvement on 0.9 by more than minimumDelta.
        let losses: [Float] = [1.0, 0.9, 0.895, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
        var rates: [Float] = []
        for (epoch, loss) in losses.enumerated() {
            _ = try callback.epochDidEnd(epoch, logs: ["loss": loss], model: model)
            rates.append(optimizer.learningRate)
        }
        XCTAssertEqual(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02])
        XCTAssertEqual(callback.reductions.map(\.epoch), [3, 5, 7])

        let rising = ReduceLROnPlateau(monitor: "accuracy", factor: 0.5, patience: 1)
        try rising.trainingWillBegin(model: model)
        optimizer.learningRate = 0.1
        for (epoch, accuracy) in [Float(0.5), 0.6, 0.7, 0.65].enumerated() {
            _ = try rising.epochDidEnd(epoch, logs: ["accuracy": accuracy], model: model)
        }
        XCTAssertEqual(optimizer.learningRate, 0.05, "accuracy is better when larger: only the last epoch waits")
    }

    func testBadSettingsAndMissingMonitorThrow() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [2])])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let x = Tensor.zeros([4, 2]), y = Tensor.zeros([4, 1])
        XCTAssertThrowsError(try model.fit(x, y, callbacks: [ReduceLROnPlateau(factor: 1)], verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "ReduceLROnPlateau.factor", value: "1.0", reason: "must lie in (0, 1)"))
        }
        XCTAssertThrowsError(try model.fit(x, y, callbacks: [ReduceLROnPlateau()], verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "ReduceLROnPlateau.monitor", value: "val_loss",
                                                                     reason: "no such log entry; the logs hold [\"loss\"]"))
        }
    }

    func testValidationDataIsEvaluatedAfterEveryEpoch() throws {
        let model = Sequential([SimpleRNN(hiddenSize: 3, inputShape: [4, 1], seed: 2), Dense(outputSize: 1, seed: 3)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError])
        let x = Tensor(shape: [8, 4, 1], scalars: (0..<32).map { Float($0 % 5) / 5 }), y = Tensor(shape: [8, 1], scalars: (0..<8).map { Float($0) / 8 })
        let vx = Tensor(shape: [3, 4, 1], scalars: (0..<12).map { Float($0 % 3) / 3 }), vy = Tensor(shape: [3, 1], scalars: [0.1, 0.5, 0.9])
        var validationLosses: [Float] = []
        for _ in 0..<3 {
            let epoch = try model.fit(x, y, epochs: 1, batchSize: 4, validationData: (vx, vy), verbose: .silent)
            let evaluated = try model.evaluate(vx, vy)
            XCTAssertEqual(epoch.values["val_loss"], [evaluated["loss"]!])
            XCTAssertEqual(epoch.values["val_mae"], [evaluated["mae"]!])
            validationLosses += epoch.values["val_loss"]!
        }
        XCTAssertNotEqual(validationLosses[0], validationLosses[2])
        XCTAssertThrowsError(try model.fit(x, y, validationData: (vx, Tensor.zeros([2, 1])), verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .sampleCountMismatch(inputs: 3, targets: 2))
        }
    }
}
