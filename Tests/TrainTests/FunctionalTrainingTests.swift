import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Training functional models: the loop `Sequential` uses, losses per output with weights, errors on bad arrays.
final class FunctionalTrainingTests: XCTestCase {
    let x = Tensor(shape: [12, 5, 2], scalars: (0..<120).map { Float(($0 * 7) % 13) / 13 - 0.4 })
    var y: Tensor { Tensor(shape: [12, 3], scalars: (0..<36).map { Float(($0 * 5) % 11) / 11 }) }

    func testFitMatchesSequentialBitForBit() throws {
        let sequential = Sequential([LSTM(hiddenSize: 6, inputShape: [5, 2], seed: 1), Dense(outputSize: 3, seed: 2)])
        try sequential.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError])
        let input = Input(shape: [5, 2])
        let model = try Model(inputs: input, outputs: Dense(outputSize: 3, seed: 2)(LSTM(hiddenSize: 6, seed: 1)(input)))
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError])
        XCTAssertEqual(model.weights.map(\.scalars), sequential.weights.map(\.scalars))
        let expected = try sequential.fit(x, y, epochs: 3, batchSize: 5, validationSplit: 0.25, verbose: .silent, seed: 9)
        let history = try model.fit(x, y, epochs: 3, batchSize: 5, validationSplit: 0.25, verbose: .silent, seed: 9)
        XCTAssertEqual(history.values, expected.values)
        XCTAssertEqual(Set(history.values.keys), ["loss", "mae", "val_loss", "val_mae"])
        XCTAssertEqual(model.weights.map(\.scalars), sequential.weights.map(\.scalars))
        XCTAssertEqual(try model.predict(x).scalars, try sequential.predict(x).scalars)
        XCTAssertLessThan(history.values["loss"]!.last!, history.values["loss"]!.first!)
    }

    /// Two heads on one trunk: the loss is Σ wᵢ·lossᵢ, reported per output, and a head of weight 0 gets no update.
    func testLossesPerOutputWithWeights() throws {
        let input = Input(shape: [5, 2])
        let trunk = LSTM(hiddenSize: 4, seed: 3)(input)
        let first = Dense(outputSize: 3, seed: 4), second = Dense(outputSize: 1, activation: .sigmoid, seed: 5)
        let model = try Model(inputs: [input], outputs: [first(trunk), second(trunk)])
        XCTAssertEqual(model.outputNames, ["dense", "dense_1"])
        let labels = Tensor(shape: [12, 1], scalars: (0..<12).map { Float($0 % 2) })
        try model.compile(losses: [.meanSquaredError, .binaryCrossEntropy()], lossWeights: [0.5, 2], optimizer: SGD(learningRate: 0.1),
                          metrics: [[.meanAbsoluteError], [.accuracy]])
        let result = try model.evaluate([x], [y, labels])
        let predictions = try model.predict([x])
        let mse = Loss.meanSquaredError(Node(predictions[0]), Node(y)).value.scalar
        let bce = Loss.binaryCrossEntropy()(Node(predictions[1]), Node(labels)).value.scalar
        XCTAssertEqual(result["dense_loss"]!, mse, accuracy: 1e-6)
        XCTAssertEqual(result["dense_1_loss"]!, bce, accuracy: 1e-6)
        XCTAssertEqual(result["loss"]!, 0.5 * mse + 2 * bce, accuracy: 1e-5)
        XCTAssertNotNil(result["dense_mae"])
        XCTAssertNotNil(result["dense_1_accuracy"])
        let batchLoss = try model.trainOnBatch([x], [y, labels])
        XCTAssertEqual(batchLoss!, 0.5 * mse + 2 * bce, accuracy: 1e-5)

        try model.compile(losses: ["dense": .meanSquaredError], optimizer: SGD(learningRate: 0.1))
        XCTAssertEqual(model.lossWeights, [1, 0])
        let frozenHead = second.kernel!.value
        let history = try model.fit([x], [y, labels], epochs: 2, batchSize: 4, verbose: .silent)
        XCTAssertEqual(second.kernel!.value.scalars, frozenHead.scalars, "an output without a loss is not trained")
        XCTAssertEqual(history.values["loss"]!.count, 2)
        XCTAssertThrowsError(try model.compile(losses: ["head": .meanSquaredError], optimizer: SGD())) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "output", value: "head",
                                                                     reason: "is not an output; the outputs are [\"dense\", \"dense_1\"]"))
        }
    }

    func testTwoInputsTrainAndCallbacksSeeTheModel() throws {
        let series = Input(shape: [5, 2]), extra = Input(shape: [4])
        let joined = Concatenate()([GRU(hiddenSize: 4, seed: 6)(series), extra])
        let model = try Model(inputs: [series, extra], outputs: [Dense(outputSize: 3, seed: 7)(joined)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01))
        let features = Tensor(shape: [12, 4], scalars: (0..<48).map { Float($0 % 4 == 0 ? 1 : 0) })
        // Asking for a larger loss makes the first epoch the best, so the callback must stop and put it back.
        let stopping = EarlyStopping(monitor: "val_loss", mode: .maximum, restoresBestWeights: true)
        let history = try model.fit([x, features], [y], epochs: 30, batchSize: 4, validationData: ([x, features], [y]),
                                    callbacks: [stopping], verbose: .silent)
        let losses = history.values["loss"]!
        XCTAssertEqual(losses.count, 2)
        XCTAssertLessThan(losses[1], losses[0])
        XCTAssertLessThan(history.values["val_loss"]![1], history.values["val_loss"]![0])
        XCTAssertEqual(try model.evaluate([x, features], [y])["loss"]!, history.values["val_loss"]![0], accuracy: 1e-6,
                       "EarlyStopping restored the best weights through the model it was given")
    }

    func testBadArraysThrowNamingTheInput() throws {
        let series = Input(shape: [5, 2]), extra = Input(shape: [4])
        let model = try Model(inputs: [series, extra], outputs: [Dense(outputSize: 3)(Concatenate()([LSTM(hiddenSize: 2)(series), extra]))])
        XCTAssertThrowsError(try model.fit([x], [y], verbose: .silent)) { XCTAssertEqual($0 as? TrainingError, .notCompiled) }
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try model.fit([x], [y], verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "x", value: "1 arrays", reason: "the model has 2 inputs"))
        }
        XCTAssertThrowsError(try model.predict([x, Tensor.zeros([12, 3])])) { error in
            XCTAssertEqual(error as? TrainingError, .shapeMismatch(name: "x[1]", expected: [4], actual: [3]))
        }
        XCTAssertThrowsError(try model.fit([x, Tensor.zeros([12, 4])], [Tensor.zeros([12, 2])], verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .shapeMismatch(name: "y", expected: [3], actual: [2]))
        }
        XCTAssertThrowsError(try model.fit([x, Tensor.zeros([11, 4])], [y], verbose: .silent)) { error in
            XCTAssertEqual(error as? TrainingError, .sampleCountMismatch(inputs: 12, targets: 11))
        }
        XCTAssertThrowsError(try model.compile(losses: [.meanSquaredError, .meanSquaredError], optimizer: SGD())) { error in
            XCTAssertEqual(error as? TrainingError, .invalidArgument(name: "losses", value: "2 entries", reason: "the model has 1 outputs"))
        }
    }
}
