import Foundation
import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Masks: made by `Masking` and `Embedding(maskZero:)`, honoured by recurrent layers as Keras does, left out of losses.
final class MaskingTests: XCTestCase {
    func testMaskedLSTMMatchesKeras() throws {
        let keras = try MaskedLSTMReference()
        let input = Input(shape: [keras.shape[1], keras.shape[2]])
        let masked = Masking(maskValue: 0)(input)
        let sequenceLayer = LSTM(hiddenSize: keras.units, returnSequences: true), lastLayer = LSTM(hiddenSize: keras.units)
        let model = try Model(inputs: [input], outputs: [sequenceLayer(masked), lastLayer(masked)])
        for layer in [sequenceLayer, lastLayer] { keras.setWeights(layer.cell.parameters) }
        let tape = Tape()
        let (outputs, masks) = model.run([tape.constant(keras.input)])
        keras.assertSequences(outputs[0].value)
        keras.assertLast(outputs[1].value)
        XCTAssertEqual(masks[0]?.scalars, keras.mask)
        XCTAssertNil(masks[1], "the mask ends where the time axis does")
        tape.backward(from: square(outputs[0]).sum())
        keras.assertGradients(sequenceLayer.cell.parameters)
    }

    /// Three sequences of lengths 5, 3 and 1, padded with zeros, through Masking → GRU → Dense per step:
    /// every valid output and every parameter gradient equals those of the sequences run alone.
    func testPaddedBatchEqualsEachSequenceAlone() throws {
        let lengths = [5, 3, 1], time = 5, features = 2
        let sequences = lengths.enumerated().map { index, length in
            Tensor(shape: [1, length, features], scalars: (0..<(length * features)).map { Float(($0 * 7 + index * 3) % 11) / 11 + 0.05 })
        }
        var padded = Tensor.zeros([lengths.count, time, features])
        padded.withUnsafeMutableBufferPointer { p in
            for (row, sequence) in sequences.enumerated() {
                for (k, value) in sequence.scalars.enumerated() { p[row * time * features + k] = value }
            }
        }
        let recurrent = GRU(hiddenSize: 4, returnSequences: true, seed: 11), head = Dense(outputSize: 2, seed: 12)
        let input = Input(shape: [time, features])
        let model = try Model(inputs: input, outputs: head(recurrent(Masking()(input))))
        let parameters = model.parameters

        let tape = Tape()
        let (outputs, masks) = model.run([tape.constant(padded)])
        let mask = try XCTUnwrap(masks[0])
        let weights = tape.constant(mask.reshaped(to: [lengths.count, time, 1]))
        tape.backward(from: (square(outputs[0]) * weights).sum())
        let paddedGradients = parameters.map { $0.gradient! }
        parameters.forEach { $0.zeroGradient() }

        var aloneGradients = parameters.map { Tensor.zeros($0.shape) }
        for (row, sequence) in sequences.enumerated() {
            let alone = Tape()
            let output = head(recurrent(alone.constant(sequence)))
            alone.backward(from: square(output).sum())
            for (k, parameter) in parameters.enumerated() { aloneGradients[k] = aloneGradients[k] + parameter.gradient! }
            parameters.forEach { $0.zeroGradient() }
            let valid = outputs[0].value.slice(along: 0, row..<(row + 1)).slice(along: 1, 0..<lengths[row])
            assertClose(valid, output.value, tolerance: 1e-5, "sequence \(row)")
            // Masked steps repeat the last real step's output, as Keras' recurrent layers do.
            let lastReal = outputs[0].value.slice(along: 0, row..<(row + 1)).slice(along: 1, (lengths[row] - 1)..<lengths[row])
            let lastStep = outputs[0].value.slice(along: 0, row..<(row + 1)).slice(along: 1, (time - 1)..<time)
            assertClose(lastStep, lastReal, tolerance: 0)
        }
        for (actual, expected) in zip(paddedGradients, aloneGradients) { assertClose(actual, expected, tolerance: 1e-5) }
    }

    func testEmbeddingMaskZeroAndMaskedLosses() throws {
        let tokens = Input(shape: [4])
        let embedding = Embedding(vocabularySize: 6, outputSize: 3, maskZero: true, seed: 1)
        let lstm = LSTM(hiddenSize: 2, seed: 2)
        let model = try Model(inputs: tokens, outputs: lstm(embedding(tokens)))
        let padded = Tensor(shape: [1, 4], scalars: [3, 5, 0, 0])
        let alone = lstm(embedding(Node(Tensor(shape: [1, 2], scalars: [3, 5]))))
        assertClose(try model.predict(padded), alone.value, tolerance: 1e-6)
        XCTAssertNotEqual(lstm(embedding(Node(padded))).value.scalars, alone.value.scalars, "without the mask the padding counts")

        // Per-step targets: padded steps' targets are garbage, and neither the loss nor training sees them.
        let sequenceInput = Input(shape: [3, 1])
        let perStep = try Model(inputs: sequenceInput,
                                outputs: Dense(outputSize: 1, seed: 3)(SimpleRNN(hiddenSize: 2, returnSequences: true, seed: 4)(Masking()(sequenceInput))))
        try perStep.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1))
        let x = Tensor(shape: [2, 3, 1], scalars: [0.5, 0.2, 0, 0.3, 0.1, 0.4])
        let clean = Tensor(shape: [2, 3, 1], scalars: [1, 2, 0, 3, 4, 5]), garbage = Tensor(shape: [2, 3, 1], scalars: [1, 2, 1e6, 3, 4, 5])
        let prediction = try perStep.predict(x).scalars
        let valid = [0, 1, 3, 4, 5]
        let expected = valid.map { (prediction[$0] - clean.scalars[$0]) * (prediction[$0] - clean.scalars[$0]) }.reduce(0, +) / 5
        XCTAssertEqual(try perStep.evaluate([x], [garbage])["loss"]!, expected, accuracy: 1e-5)
        XCTAssertEqual(try perStep.trainOnBatch([x], [garbage])!, expected, accuracy: 1e-5)
        XCTAssertEqual(Loss.sparseCategoricalCrossEntropy()(Node(Tensor(shape: [1, 2, 2], scalars: [0.9, 0.1, 0.5, 0.5])),
                                                              Node(Tensor(shape: [1, 2], scalars: [0, 1])),
                                                              mask: Tensor(shape: [1, 2], scalars: [1, 0])).value.scalar,
                       -Foundation.log(0.9), accuracy: 1e-6)
    }

    /// A bidirectional layer reverses each padded sequence within its true length: the valid outputs and every
    /// gradient equal those of each sequence alone.
    func testBidirectionalPaddedBatchEqualsEachSequenceAlone() throws {
        let lengths = [4, 2], time = 4, features = 2
        let sequences = lengths.enumerated().map { index, length in
            Tensor(shape: [1, length, features], scalars: (0..<(length * features)).map { Float(($0 * 5 + index) % 7) / 7 + 0.1 })
        }
        var padded = Tensor.zeros([lengths.count, time, features])
        padded.withUnsafeMutableBufferPointer { p in
            for (row, sequence) in sequences.enumerated() {
                for (k, value) in sequence.scalars.enumerated() { p[row * time * features + k] = value }
            }
        }
        for returnSequences in [true, false] {
            let layer = Bidirectional(LSTM(hiddenSize: 3, returnSequences: returnSequences, seed: 21))
            let input = Input(shape: [time, features])
            let model = try Model(inputs: input, outputs: layer(Masking()(input)))
            let tape = Tape()
            let (outputs, masks) = model.run([tape.constant(padded)])
            XCTAssertEqual(masks[0] == nil, !returnSequences)
            let weights = returnSequences ? tape.constant(masks[0]!.reshaped(to: [lengths.count, time, 1])) : tape.constant(Tensor(shape: [1], scalars: [1]))
            tape.backward(from: (square(outputs[0]) * weights).sum())
            let paddedGradients = model.parameters.map { $0.gradient! }
            model.parameters.forEach { $0.zeroGradient() }
            var aloneGradients = model.parameters.map { Tensor.zeros($0.shape) }
            for (row, sequence) in sequences.enumerated() {
                let alone = Tape()
                let output = layer(alone.constant(sequence))
                alone.backward(from: square(output).sum())
                for (k, parameter) in model.parameters.enumerated() { aloneGradients[k] = aloneGradients[k] + parameter.gradient! }
                model.parameters.forEach { $0.zeroGradient() }
                let mine = outputs[0].value.slice(along: 0, row..<(row + 1))
                assertClose(returnSequences ? mine.slice(along: 1, 0..<lengths[row]) : mine, output.value, tolerance: 1e-5,
                            "sequence \(row), returnSequences \(returnSequences)")
            }
            for (actual, expected) in zip(paddedGradients, aloneGradients) { assertClose(actual, expected, tolerance: 1e-5) }
        }
    }

    /// Metrics leave padded steps out, in `evaluate` and in `fit`'s running metrics.
    func testMetricsSkipMaskedSteps() throws {
        let input = Input(shape: [3, 1])
        let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 5)(SimpleRNN(hiddenSize: 2, returnSequences: true, seed: 6)(Masking()(input))))
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: 0.1), metrics: [.meanAbsoluteError])
        let x = Tensor(shape: [2, 3, 1], scalars: [0.5, 0.2, 0, 0.3, 0.1, 0.4])
        let y = Tensor(shape: [2, 3, 1], scalars: [1, 2, 1e3, 3, 4, 5])
        let prediction = try model.predict(x).scalars
        let expected = [0, 1, 3, 4, 5].map { Swift.abs(prediction[$0] - y.scalars[$0]) }.reduce(0, +) / 5
        XCTAssertEqual(try model.evaluate([x], [y])["mae"]!, expected, accuracy: 1e-5)
        let history = try model.fit([x], [y], epochs: 1, batchSize: 2, verbose: .silent)
        XCTAssertEqual(history.values["mae"]![0], expected, accuracy: 1e-5, "measured on the step's predictions, before its update")
    }
}
