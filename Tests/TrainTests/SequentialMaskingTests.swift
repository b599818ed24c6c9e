import Foundation
import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Masks through `Sequential`: `Masking` and `Embedding(maskZero:)` make them, the recurrent layers after them
/// honour them and the losses and metrics leave padded steps out, exactly as in a functional `Model`.
final class SequentialMaskingTests: XCTestCase {
    func testMaskedLSTMMatchesKeras() throws {
        let keras = try MaskedLSTMReference()
        for returnSequences in [true, false] {
            let layer = LSTM(hiddenSize: keras.units, returnSequences: returnSequences)
            let model = Sequential([Masking(maskValue: 0), layer], inputShape: [keras.shape[1], keras.shape[2]])
            try model.compile(loss: .meanSquaredError, optimizer: SGD())
            keras.setWeights(layer.cell.parameters)
            let tape = Tape()
            let (output, mask) = model.run(tape.constant(keras.input))
            if returnSequences {
                keras.assertSequences(output.value)
                XCTAssertEqual(mask?.scalars, keras.mask)
                tape.backward(from: square(output).sum())
                keras.assertGradients(layer.cell.parameters)
            } else {
                keras.assertLast(output.value)
                XCTAssertNil(mask, "the mask ends where the time axis does")
            }
            assertClose(try model.predict(keras.input), output.value, tolerance: 0)
        }
    }

    /// Three sequences of lengths 4, 2 and 1, padded with zeros, through Masking → GRU → Dense per step, as a
    /// stack and as a functional model: the same outputs, losses, metrics and gradients, with targets that are
    /// garbage at the padded steps.
    func testPaddedBatchGivesTheSameAsAFunctionalModel() throws {
        let lengths = [4, 2, 1], time = 4
        var padded = Tensor.zeros([3, time, 2])
        padded.withUnsafeMutableBufferPointer { p in
            for (row, length) in lengths.enumerated() {
                for k in 0..<(length * 2) { p[row * time * 2 + k] = Float((k * 7 + row * 3) % 11) / 11 + 0.05 }
            }
        }
        let validTargets = Tensor.randomUniform([3, time, 1], in: -1...1, seed: 71)
        var targets = validTargets
        targets.withUnsafeMutableBufferPointer { p in
            for (row, length) in lengths.enumerated() { for t in length..<time { p[row * time + t] = 1e3 } }
        }
        let stack = Sequential([Masking(), GRU(hiddenSize: 4, returnSequences: true, seed: 72), Dense(outputSize: 1, seed: 73)],
                               inputShape: [time, 2])
        try stack.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1), metrics: [.meanAbsoluteError])
        let input = Input(shape: [time, 2])
        let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 73)(GRU(hiddenSize: 4, returnSequences: true, seed: 72)(Masking()(input))))
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1), metrics: [.meanAbsoluteError])
        XCTAssertEqual(stack.weights.map(\.scalars), model.weights.map(\.scalars))

        let stackTape = Tape(), modelTape = Tape()
        let (stackOutput, stackMask) = stack.run(stackTape.constant(padded))
        let (modelOutputs, modelMasks) = model.run([modelTape.constant(padded)])
        XCTAssertEqual(stackOutput.value.scalars, modelOutputs[0].value.scalars)
        XCTAssertEqual(stackMask?.scalars, modelMasks[0]?.scalars)
        let stackLoss = Loss.meanSquaredError(stackOutput, stackTape.constant(targets), mask: try XCTUnwrap(stackMask))
        let modelLoss = Loss.meanSquaredError(modelOutputs[0], modelTape.constant(targets), mask: try XCTUnwrap(modelMasks[0]))
        stackTape.backward(from: stackLoss)
        modelTape.backward(from: modelLoss)
        XCTAssertEqual(stack.parameters.map { $0.gradient!.scalars }, model.parameters.map { $0.gradient!.scalars })
        stack.parameters.forEach { $0.zeroGradient() }
        model.parameters.forEach { $0.zeroGradient() }

        // Only the seven real steps count, so the garbage targets change nothing.
        let prediction = try stack.predict(padded).scalars
        let real = lengths.enumerated().flatMap { row, length in (0..<length).map { row * time + $0 } }
        let squared = real.map { (prediction[$0] - validTargets.scalars[$0]) * (prediction[$0] - validTargets.scalars[$0]) }
        let absolute = real.map { Swift.abs(prediction[$0] - validTargets.scalars[$0]) }
        let evaluation = try stack.evaluate(padded, targets)
        XCTAssertEqual(evaluation["loss"]!, squared.reduce(0, +) / 7, accuracy: 1e-5)
        XCTAssertEqual(evaluation["mae"]!, absolute.reduce(0, +) / 7, accuracy: 1e-5)
        XCTAssertEqual(evaluation, try model.evaluate([padded], [targets]))
        let expected = try model.fit([padded], [targets], epochs: 3, batchSize: 2, verbose: .silent, seed: 3)
        let history = try stack.fit(padded, targets, epochs: 3, batchSize: 2, verbose: .silent, seed: 3)
        XCTAssertEqual(history.values, expected.values)
        XCTAssertEqual(stack.weights.map(\.scalars), model.weights.map(\.scalars))
        XCTAssertLessThan(history["loss"].last!, 10, "the padded targets of 1000 reached the loss")
        XCTAssertNil(stack.compiledTrainingPlan(inputShape: [2, time, 2], targetShape: [2, time, 1]), "a mask was frozen into a plan")
    }

    func testEmbeddingMaskZeroIsHonoured() throws {
        let embedding = Embedding(vocabularySize: 6, outputSize: 3, maskZero: true, seed: 1), lstm = LSTM(hiddenSize: 2, seed: 2)
        let stack = Sequential([embedding, lstm], inputShape: [4])
        let padded = Tensor(shape: [1, 4], scalars: [3, 5, 0, 0])
        let alone = lstm(embedding(Node(Tensor(shape: [1, 2], scalars: [3, 5]))))
        assertClose(try stack.predict(padded), alone.value, tolerance: 1e-6)
        XCTAssertNotEqual(lstm(embedding(Node(padded))).value.scalars, alone.value.scalars, "without the mask the padding counts")
    }
}
