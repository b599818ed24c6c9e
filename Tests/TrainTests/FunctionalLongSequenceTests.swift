import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Truncated BPTT and stateful training of functional models: the same code as `Sequential`'s, so a functional
/// model equal to a stack trains to the same losses; what a layer graph allows beyond a stack is refused by name.
final class FunctionalLongSequenceTests: XCTestCase {
    let x = Tensor.randomUniform([4, 7, 2], in: -1...1, seed: 61)
    let y = Tensor.randomUniform([4, 7, 1], in: -1...1, seed: 62)

    func assertSameTraining(_ expected: History, _ actual: History, _ label: String) {
        XCTAssertEqual(Set(actual.values.keys), Set(expected.values.keys), label)
        for (key, values) in expected.values {
            for (epoch, (a, e)) in zip(actual.values[key]!, values).enumerated() {
                XCTAssertEqual(a, e, accuracy: 1e-6 * max(abs(e), 1e-6), "\(label): \(key) at epoch \(epoch + 1)")
            }
        }
    }

    func testTruncatedBPTTMatchesSequential() throws {
        for (k1, k2, perStep) in [(2, 3, true), (3, 3, true), (2, 4, false)] {
            let label = "BPTT(\(k1), \(k2)), \(perStep ? "per-step targets" : "one target per sequence")"
            let targets = perStep ? y : y.slice(along: 1, 6..<7).reshaped(to: [4, 1])
            let stack = Sequential([LSTM(hiddenSize: 3, inputShape: [7, 2], returnSequences: perStep, seed: 63), Dense(outputSize: 1, seed: 64)])
            try stack.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.05), metrics: [.meanAbsoluteError])
            let input = Input(shape: [7, 2])
            let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 64)(LSTM(hiddenSize: 3, returnSequences: perStep, seed: 63)(input)))
            try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.05), metrics: [.meanAbsoluteError])
            XCTAssertEqual(model.weights.map(\.scalars), stack.weights.map(\.scalars))
            let expected = try stack.fit(x, targets, epochs: 4, batchSize: 2, verbose: .silent,
                                         truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2, seed: 5)
            // Both overloads: arrays per input and output, and plain tensors for one of each.
            let actual = perStep
                ? try model.fit([x], [targets], epochs: 4, batchSize: 2, verbose: .silent,
                                truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2, seed: 5)
                : try model.fit(x, targets, epochs: 4, batchSize: 2, verbose: .silent,
                                truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2, seed: 5)
            assertSameTraining(expected, actual, label)
            XCTAssertLessThan(actual["loss"].last!, actual["loss"].first!, "\(label): did not learn")
            for (a, e) in zip(model.weights, stack.weights) { assertClose(a, e, tolerance: 1e-6, "\(label) weights") }
            let recurrent = try XCTUnwrap(model.layers.first { $0 is LSTM } as? LSTM)
            XCTAssertFalse(recurrent.isStateful, "\(label): truncation left the layer stateful")
            XCTAssertNil(recurrent.carriedState, "\(label): truncation left a carried state")
        }
    }

    func testStatefulTrainingMatchesSequential() throws {
        // Two sequences of 21 steps cut into three chunks of 7: batch k holds chunk k of both.
        let stack = Sequential([GRU(hiddenSize: 4, inputShape: [7, 2], returnSequences: true, isStateful: true, seed: 65),
                                Dense(outputSize: 1, seed: 66)])
        try stack.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.03))
        let input = Input(shape: [7, 2])
        let recurrent = GRU(hiddenSize: 4, returnSequences: true, isStateful: true, seed: 65)
        let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 66)(recurrent(input)))
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.03))
        let chunks = Tensor.concatenate([x, x.slice(along: 0, 0..<2)], along: 0), targets = Tensor.concatenate([y, y.slice(along: 0, 0..<2)], along: 0)
        let expected = try stack.fit(chunks, targets, epochs: 5, batchSize: 2, shuffle: false, callbacks: [ResetStates()], verbose: .silent)
        let actual = try model.fit([chunks], [targets], epochs: 5, batchSize: 2, shuffle: false, callbacks: [ResetStates()], verbose: .silent)
        assertSameTraining(expected, actual, "stateful")
        for (a, e) in zip(model.weights, stack.weights) { assertClose(a, e, tolerance: 1e-6, "stateful weights") }
        XCTAssertEqual(model.tracedPlanCount, 1, "one plan, fed the carried state, for every batch")
        // Without the callback the state is carried into the next fit, as in Sequential.
        try model.fit([chunks], [targets], epochs: 1, batchSize: 2, shuffle: false, verbose: .silent)
        XCTAssertEqual(recurrent.carriedState?.first?.shape, [2, 4])
        XCTAssertThrowsError(try model.fit([chunks], [targets], batchSize: 3, shuffle: false, verbose: .silent)) {
            XCTAssertTrue("\($0)".contains("carries a state for batches of 2"), "\($0)")
        }
    }

    func testStatefulAndTruncatedRulesAreCheckedWithTypedErrors() throws {
        let input = Input(shape: [6, 1])
        let stateful = try Model(inputs: input, outputs: Dense(outputSize: 1)(LSTM(hiddenSize: 2, isStateful: true)(input)))
        try stateful.compile(loss: .meanSquaredError, optimizer: SGD())
        let (x, y) = (Tensor.zeros([8, 6, 1]), Tensor.zeros([8, 1]))
        XCTAssertThrowsError(try stateful.fit([x], [y], batchSize: 4, verbose: .silent)) {
            XCTAssertEqual($0 as? TrainingError, .invalidArgument(name: "shuffle", value: "true", reason: "the stateful layer LSTM carries row i of a batch into row i of the next: pass shuffle: false"))
        }
        XCTAssertThrowsError(try stateful.fit([x], [y], batchSize: 3, shuffle: false, verbose: .silent)) {
            XCTAssertTrue("\($0)".contains("last batch of 2"), "\($0)")
        }
        XCTAssertThrowsError(try stateful.fit([x], [y], batchSize: 4, shuffle: false, verbose: .silent, truncatedBPTTSteps: 2)) {
            XCTAssertTrue("\($0)".contains("cannot train the stateful layer"), "\($0)")
        }

        let series = Input(shape: [6, 1]), quarter = Input(shape: [4])
        let twoInputs = try Model(inputs: [series, quarter], outputs: [Dense(outputSize: 1)(Concatenate()([LSTM(hiddenSize: 2)(series), quarter]))])
        try twoInputs.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try twoInputs.fit([x, Tensor.zeros([8, 4])], [y], verbose: .silent, truncatedBPTTSteps: 2)) {
            XCTAssertEqual($0 as? TrainingError, .unsupported("truncated BPTT cuts one input into windows along time and scores one output; this model has 2 inputs and 1 outputs"))
        }

        let (_, h) = GRU(hiddenSize: 2)(input)
        let decoder = try Model(inputs: input, outputs: Dense(outputSize: 1)(GRU(hiddenSize: 2)(input, initialState: [h])))
        try decoder.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try decoder.fit([x], [y], verbose: .silent, truncatedBPTTSteps: 2)) {
            XCTAssertTrue("\($0)".contains("gru_1 starts from an initial state given by other layers"), "\($0)")
        }

        let shared = LSTM(hiddenSize: 2, isStateful: true)
        let twice = try Model(inputs: input, outputs: Add()([shared(input), shared(input)]))
        try twice.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try twice.fit([x], [Tensor.zeros([8, 2])], batchSize: 4, shuffle: false, verbose: .silent)) {
            XCTAssertEqual($0 as? TrainingError, .unsupported("lstm is called 2 times and it is stateful: one carried state cannot continue 2 sequences"))
        }
    }
}
