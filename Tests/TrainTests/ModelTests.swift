import Datasets
import Foundation
import Graph
import Layers
import TestSupport
import Train
import XCTest

/// The Keras-shaped workflow: summary, training on the course's ramp exercise, callbacks, errors.
final class ModelTests: XCTestCase {
    func testSummaryMatchesKeras() throws {
        let model = Sequential()
        model.add(LSTM(hiddenSize: 400, inputShape: [32, 1]))
        model.add(Dense(outputSize: 8))
        try model.compile(loss: .meanSquaredError, optimizer: Adam())
        let summary = model.summary()
        XCTAssertTrue(summary.contains("│ lstm (LSTM)"), summary)
        XCTAssertTrue(summary.contains("(None, 400)"), summary)
        XCTAssertTrue(summary.contains("643,200 │"), summary)
        XCTAssertTrue(summary.contains("│ dense (Dense)"), summary)
        XCTAssertTrue(summary.contains("3,208 │"), summary)
        XCTAssertTrue(summary.contains(" Total params: 646,408 (2.47 MB)"), summary)
        XCTAssertTrue(summary.contains(" Trainable params: 646,408 (2.47 MB)"), summary)
        XCTAssertTrue(summary.contains(" Non-trainable params: 0 (0.00 B)"), summary)
        XCTAssertEqual(model.parameterCount, 646_408)
    }

    func testEchoStateReservoirCountsAsNonTrainable() throws {
        let model = Sequential([EchoStateNetwork(reservoirSize: 20, outputSize: 3, inputShape: [5, 2], seed: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let summary = model.summary()
        // Reservoir: input kernel 2·20 + recurrent 20·20 + bias 20 = 460; readout 20·3 + 3 = 63.
        XCTAssertTrue(summary.contains(" Total params: 523 (2.04 KB)"), summary)
        XCTAssertTrue(summary.contains(" Trainable params: 63 (252.00 B)"), summary)
        XCTAssertTrue(summary.contains(" Non-trainable params: 460 (1.80 KB)"), summary)
        XCTAssertTrue(summary.contains("│ echo_state_network (EchoStateNetwork)"), summary)
    }

    func testLayerNamesAndSequenceShapes() throws {
        let model = Sequential([SimpleRNN(hiddenSize: 4, inputShape: [5, 2], returnSequences: true),
                                SimpleRNN(hiddenSize: 3, returnSequences: true), Bidirectional(GRU(hiddenSize: 2)), Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertEqual(model.layerNames, ["simple_rnn", "simple_rnn_1", "bidirectional", "dense"])
        XCTAssertEqual(model.outputShape, [1])
        XCTAssertTrue(model.summary().contains("(None, 5, 3)"))
        XCTAssertEqual(model.namedParameters.map(\.name).filter { $0.hasPrefix("bidirectional") },
                       ["bidirectional/kernel", "bidirectional/recurrent_kernel", "bidirectional/bias",
                        "bidirectional/kernel_1", "bidirectional/recurrent_kernel_1", "bidirectional/bias_1"])
    }

    /// The course's first exercise: windows of a ramp series, predict the next value.
    func rampData() throws -> (x: Tensor, y: Tensor, heldOut: Tensor, expected: Float) {
        let series = (0..<40).map { 0.1 + 0.02 * Float($0) }
        let windows = try Windows(series: series, pastSteps: 4, futureSteps: 1)
        // Hold out the window starting at step 10 ([0.3, 0.32, 0.34, 0.36] -> 0.38).
        let keep = (0..<windows.count).filter { $0 != 10 }
        let x = Tensor.concatenate(keep.map { windows.inputs.slice(along: 0, $0..<($0 + 1)) }, along: 0)
        let y = Tensor.concatenate(keep.map { windows.flattenedTargets.slice(along: 0, $0..<($0 + 1)) }, along: 0)
        return (x, y, windows.inputs.slice(along: 0, 10..<11), 0.38)
    }

    func checkLearnsRamp(_ recurrent: [Layer], _ label: String) throws {
        Initializers.resetSeedSequence(to: 42)
        let (x, y, heldOut, expected) = try rampData()
        let model = Sequential(recurrent + [Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01), metrics: [.meanAbsoluteError])
        let history = try model.fit(x, y, epochs: 300, batchSize: 36, verbose: .silent)
        let prediction = try model.predict(heldOut).scalars[0]
        XCTAssertEqual(prediction, expected, accuracy: 0.05, "\(label): predicted \(prediction); loss \(history["loss"].first!) -> \(history["loss"].last!)")
        XCTAssertLessThan(history["loss"].last!, history["loss"].first! / 10, label)
        XCTAssertEqual(history["mae"].count, 300)
    }

    func testLSTMLearnsTheRamp() throws {
        try checkLearnsRamp([LSTM(hiddenSize: 16, inputShape: [4, 1])], "LSTM")
    }

    func testSimpleRNNLearnsTheRamp() throws {
        try checkLearnsRamp([SimpleRNN(hiddenSize: 16, inputShape: [4, 1])], "SimpleRNN")
    }

    func testGRULearnsTheRamp() throws {
        try checkLearnsRamp([GRU(hiddenSize: 16, inputShape: [4, 1])], "GRU")
    }

    func testStackedModelLearnsTheRamp() throws {
        try checkLearnsRamp([LSTM(hiddenSize: 12, inputShape: [4, 1], returnSequences: true), LSTM(hiddenSize: 12)], "stacked LSTM")
    }

    func testValidationSplitAndEarlyStopping() throws {
        Initializers.resetSeedSequence(to: 1)
        let (x, y, _, _) = try rampData()
        let model = Sequential([Dense(outputSize: 3, inputShape: [4]), Dense(outputSize: 1)])
        // A learning rate of zero never improves, so early stopping with patience 2 ends after epoch 3.
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0))
        let stopper = EarlyStopping(monitor: "val_loss", patience: 2)
        let history = try model.fit(x.reshaped(to: [-1, 4]), y, epochs: 50, validationSplit: 0.25, callbacks: [stopper], verbose: .silent)
        XCTAssertEqual(history.epochs, [0, 1, 2])
        XCTAssertEqual(stopper.stoppedEpoch, 2)
        XCTAssertNotNil(history.stopReason)
        XCTAssertEqual(history["val_loss"].count, 3)
    }

    func testEarlyStoppingRestoresBestWeights() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [1])])
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        let x = Tensor(shape: [4, 1], scalars: [0, 1, 2, 3]), y = Tensor(shape: [4, 1], scalars: [1, 3, 5, 7])
        // Monitoring "loss" in maximum mode: the first epoch is "best"; training then stops and puts its weights back.
        let stopper = EarlyStopping(monitor: "loss", patience: 1, mode: .maximum, restoresBestWeights: true)
        let recorder = WeightRecorder()
        _ = try model.fit(x, y, epochs: 10, batchSize: 4, shuffle: false, callbacks: [recorder, stopper], verbose: .silent)
        XCTAssertEqual(recorder.weights.count, 2, "patience 1: stops at the first epoch without improvement, as Keras")
        XCTAssertEqual(model.weights, recorder.weights[0])
        XCTAssertNotEqual(model.weights, recorder.weights[1])
    }

    func testTerminateOnNaNKeepsLastGoodWeights() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [1])])
        // A huge learning rate makes the loss overflow within a few steps.
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 1e8))
        let x = Tensor(shape: [4, 1], scalars: [1, 2, 3, 4]), y = Tensor(shape: [4, 1], scalars: [1, 2, 3, 4])
        let history = try model.fit(x, y, epochs: 100, batchSize: 4, verbose: .silent)
        XCTAssertNotNil(history.stopReason)
        XCTAssertTrue(history.stopReason!.contains("non-finite"), history.stopReason!)
        XCTAssertLessThan(history.epochs.count, 100)
        XCTAssertTrue(model.weights.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }, "weights stay finite")
    }

    func testTruncatedBPTTTrainsWithBoundedTape() throws {
        Initializers.resetSeedSequence(to: 3)
        // Sequence-to-sequence: output at each step the input two steps earlier (needs memory across chunks? no: 2 < chunk).
        let steps = 400
        let x = Tensor.randomUniform([4, steps, 1], in: -1...1, seed: 9)
        let shifted = Tensor.concatenate([Tensor.zeros([4, 2, 1]), x.slice(along: 1, 0..<(steps - 2))], along: 1)
        let model = Sequential([LSTM(hiddenSize: 8, inputShape: [steps, 1], returnSequences: true), Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.02))
        let history = try model.fit(x, shifted, epochs: 40, batchSize: 4, verbose: .silent, truncatedBPTTSteps: 20)
        let chunkTape = model.lastTapeNodeCount
        XCTAssertLessThan(history["loss"].last!, history["loss"].first! / 3, "loss \(history["loss"].first!) -> \(history["loss"].last!)")
        // The tape of a 20-step chunk is a twentieth of the full sequence's.
        _ = try model.fit(x, shifted, epochs: 1, batchSize: 4, verbose: .silent)
        XCTAssertLessThan(chunkTape * 10, model.lastTapeNodeCount, "chunk tape \(chunkTape) vs full \(model.lastTapeNodeCount)")
        XCTAssertThrowsError(try Sequential([Bidirectional(LSTM(hiddenSize: 2, inputShape: [4, 1])), Dense(outputSize: 1)]).fitAfterCompile(
            Tensor.zeros([2, 4, 1]), Tensor.zeros([2, 1]), truncatedBPTTSteps: 2))
    }

    func testSameSeedGivesBitwiseIdenticalTraining() throws {
        // Large enough that the matrix products and element-wise kernels run on both threads.
        func train() throws -> [Tensor] {
            Initializers.resetSeedSequence(to: 5)
            let model = Sequential([LSTM(hiddenSize: 128, inputShape: [6, 4]), Dense(outputSize: 2)])
            try model.compile(loss: .meanSquaredError, optimizer: Adam())
            let x = Tensor.randomUniform([96, 6, 4], in: -1...1, seed: 1), y = Tensor.randomUniform([96, 2], in: -1...1, seed: 2)
            try model.fit(x, y, epochs: 2, batchSize: 48, verbose: .silent, seed: 3)
            return model.weights
        }
        XCTAssertEqual(try train(), try train())
    }

    func testBadInputsThrowTypedErrors() throws {
        let model = Sequential([LSTM(hiddenSize: 3, inputShape: [5, 2]), Dense(outputSize: 2)])
        XCTAssertThrowsError(try model.fit(Tensor.zeros([4, 5, 2]), Tensor.zeros([4, 2]))) { XCTAssertEqual($0 as? TrainingError, .notCompiled) }
        try model.compile(loss: .meanSquaredError, optimizer: Adam())
        func expect(_ x: Tensor, _ y: Tensor, _ error: TrainingError, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try model.fit(x, y, verbose: .silent), file: file, line: line) {
                XCTAssertEqual($0 as? TrainingError, error, file: file, line: line)
            }
        }
        expect(Tensor.zeros([4, 5, 2]), Tensor.zeros([3, 2]), .sampleCountMismatch(inputs: 4, targets: 3))
        expect(Tensor.zeros([4, 5, 3]), Tensor.zeros([4, 2]), .shapeMismatch(name: "x", expected: [5, 2], actual: [5, 3]))
        expect(Tensor.zeros([4, 5, 2]), Tensor.zeros([4, 3]), .shapeMismatch(name: "y", expected: [2], actual: [3]))
        expect(Tensor.zeros([0, 5, 2]), Tensor.zeros([0, 2]), .emptyData(name: "x"))
        var bad = Tensor.zeros([4, 5, 2])
        bad[1, 0, 1] = .nan
        expect(bad, Tensor.zeros([4, 2]), .nonFinite(name: "x", index: 11))
        XCTAssertThrowsError(try model.fit(Tensor.zeros([4, 5, 2]), Tensor.zeros([4, 2]), epochs: 0)) {
            XCTAssertTrue("\($0)".contains("epochs = 0"))
        }
        XCTAssertThrowsError(try model.predict(Tensor.zeros([4, 6, 2]))) {
            XCTAssertEqual("\($0)", "x has per-sample shape [6, 2], expected [5, 2]")
        }
        // An incompatible stack names both layers and the shape between them.
        let broken = Sequential([LSTM(hiddenSize: 3, inputShape: [5, 2]), LSTM(hiddenSize: 2)])
        XCTAssertThrowsError(try broken.compile(loss: .meanSquaredError, optimizer: Adam())) {
            XCTAssertEqual("\($0)", "lstm_1 (LSTM) cannot follow lstm (LSTM) (output shape (None, 3)): expects input [time, features], got [3]")
        }
        XCTAssertThrowsError(try Sequential([Dense(outputSize: 1)]).compile(loss: .meanSquaredError, optimizer: Adam())) {
            XCTAssertEqual($0 as? TrainingError, .missingInputShape(layer: "Dense"))
        }
    }

    func testIndicesOutOfRangeThrow() throws {
        let model = Sequential([Embedding(vocabularySize: 5, outputSize: 3, inputShape: [4]), LSTM(hiddenSize: 2), Dense(outputSize: 5)])
        try model.compile(loss: .sparseCategoricalCrossEntropy(fromLogits: true), optimizer: Adam())
        XCTAssertThrowsError(try model.fit(Tensor([[0, 1, 2, 7]]), Tensor([1]), verbose: .silent)) {
            XCTAssertEqual("\($0)", "x[3] = 7.0 is invalid: must be a whole number in 0..<5 (an index)")
        }
        XCTAssertThrowsError(try model.fit(Tensor([[0, 1, 2, 3]]), Tensor([1.5]), verbose: .silent)) {
            XCTAssertEqual("\($0)", "y[0] = 1.5 is invalid: must be a whole number in 0..<5 (an index)")
        }
        XCTAssertThrowsError(try model.predict(Tensor([[0, -1, 2, 3]])))
        let history = try model.fit(Tensor([[0, 1, 2, 3]]), Tensor([4]), epochs: 2, verbose: .silent)
        XCTAssertEqual(history["loss"].count, 2)
    }

    func testPredictAndEvaluate() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [2])])
        try model.compile(loss: .meanSquaredError, optimizer: SGD(), metrics: [.meanAbsoluteError, .rootMeanSquaredError])
        try model.setWeights([Tensor([[2], [-1]]), Tensor([0.5])])
        let x = Tensor([[1, 1], [2, 0], [0, 3]])
        XCTAssertEqual(try model.predict(x, batchSize: 2).scalars, [1.5, 4.5, -2.5])
        let scores = try model.evaluate(x, Tensor([[1.5], [4.5], [0.5]]))
        XCTAssertEqual(scores["loss"]!, 3, accuracy: 1e-6)
        XCTAssertEqual(scores["mae"]!, 1, accuracy: 1e-6)
        XCTAssertEqual(scores["rmse"]!, Float(3).squareRoot(), accuracy: 1e-6 as Float)
    }

    func testLossesAgainstHandComputedValues() {
        let p = Node(Tensor([[0.2, 0.8], [0.6, 0.4]])), t = Node(Tensor([[0, 1], [1, 0]]))
        XCTAssertEqual(Loss.meanSquaredError(p, t).value.scalar, (0.04 + 0.04 + 0.16 + 0.16) / 4, accuracy: 1e-6)
        XCTAssertEqual(Loss.meanAbsoluteError(p, t).value.scalar, 0.3, accuracy: 1e-6)
        let bce = -(log(0.8) + log(0.8) + log(0.6) + log(0.6)) / 4
        XCTAssertEqual(Loss.binaryCrossEntropy()(p, t).value.scalar, Float(bce), accuracy: 1e-5)
        XCTAssertEqual(Loss.categoricalCrossEntropy()(p, t).value.scalar, Float(-(log(0.8) + log(0.6)) / 2), accuracy: 1e-5)
        let logits = Node(Tensor([[1, 2, 3], [1000, 0, -1000]]))
        let expected = (-log(exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0))) + 0) / 2
        XCTAssertEqual(Loss.sparseCategoricalCrossEntropy(fromLogits: true)(logits, Node(Tensor([2, 0]))).value.scalar, Float(expected), accuracy: 1e-5)
        let z = Node(Tensor([-50, 0, 50])), labels = Node(Tensor([0, 1, 1]))
        XCTAssertEqual(Loss.binaryCrossEntropy(fromLogits: true)(z, labels).value.scalar, Float(log(2.0) / 3), accuracy: 1e-5)
    }

    func testLossGradientsMatchFiniteDifferences() {
        let p = Tensor.randomUniform([3, 4], in: 0.1...0.9, seed: 1)
        let t = Tensor.randomUniform([3, 4], in: 0...1, seed: 2)
        for loss in [Loss.meanSquaredError, .binaryCrossEntropy(), .binaryCrossEntropy(fromLogits: true),
                     .categoricalCrossEntropy(), .categoricalCrossEntropy(fromLogits: true)] {
            checkGradients([p], "\(loss)") { loss($0[0], Node(t)) }
        }
    }

    func testCallbacksLogAndSchedule() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-callbacks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = Sequential([Dense(outputSize: 1, inputShape: [1])])
        let optimizer = SGD(learningRate: 0.1)
        try model.compile(loss: .meanSquaredError, optimizer: optimizer)
        let x = Tensor(shape: [4, 1], scalars: [0, 1, 2, 3]), y = Tensor(shape: [4, 1], scalars: [1, 3, 5, 7])
        let csv = directory.appendingPathComponent("history.csv"), weights = directory.appendingPathComponent("best.safetensors")
        let scheduler = LearningRateScheduler { epoch, rate in epoch == 0 ? rate : rate * 0.5 }
        let checkpoint = ModelCheckpoint(url: weights, monitor: "loss", savesBestOnly: true)
        let history = try model.fit(x, y, epochs: 3, batchSize: 4, callbacks: [scheduler, CSVLogger(url: csv), checkpoint], verbose: .silent)
        XCTAssertEqual(scheduler.rates, [0.1, 0.05, 0.025])
        let lines = try String(contentsOf: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "epoch,loss")
        XCTAssertEqual(lines.count, 4)
        XCTAssertEqual(Float(lines[3].split(separator: ",")[1]), history["loss"][2])
        XCTAssertEqual(checkpoint.savedEpochs, [0, 1, 2])
        let reloaded = Sequential([Dense(outputSize: 1, inputShape: [1])])
        try reloaded.loadWeights(from: weights)
        XCTAssertEqual(reloaded.weights, model.weights)
    }
}

/// Records the weights after every epoch.
final class WeightRecorder: Callback {
    var weights: [[Tensor]] = []
    func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        weights.append(model.weights)
        return .proceed
    }
}

extension Sequential {
    func fitAfterCompile(_ x: Tensor, _ y: Tensor, truncatedBPTTSteps: Int) throws {
        try compile(loss: .meanSquaredError, optimizer: SGD())
        try fit(x, y, verbose: .silent, truncatedBPTTSteps: truncatedBPTTSteps)
    }
}
