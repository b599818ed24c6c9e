import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Truncated BPTT with k1 ≠ k2, and stateful training through `fit`.
final class LongSequenceTrainingTests: XCTestCase {
    /// `[batch, time, 1]`: each sequence's first value drawn from [-1, 1], then zeros; the target at every
    /// step is that first value, so any step after the first needs the state carried from step 0.
    func rememberTheFirstValue(sequences: Int, steps: Int, seed: UInt64) -> (x: Tensor, y: Tensor) {
        let first = Tensor.randomUniform([sequences, 1, 1], in: -1...1, seed: seed)
        let x = Tensor.concatenate([first, Tensor.zeros([sequences, steps - 1, 1])], along: 1)
        return (x, first.broadcast(to: [sequences, steps, 1]))
    }

    func testTruncatedK1K2UpdatesEqualAHandUnrolledReference() throws {
        try assertTruncationMatchesHandUnrolledReference(batch: 2)
    }

    func testTruncatedK1K2OnOneLongSeriesEqualsAHandUnrolledReference() throws {
        try assertTruncationMatchesHandUnrolledReference(batch: 1, steps: 11)
    }

    func assertTruncationMatchesHandUnrolledReference(batch: Int, steps: Int = 7) throws {
        let (k1, k2, rate): (Int, Int, Float) = (2, 3, 0.1)
        let x = Tensor.randomUniform([batch, steps, 2], in: -1...1, seed: 41)
        let y = Tensor.randomUniform([batch, steps, 1], in: -1...1, seed: 42)
        let model = Sequential([SimpleRNN(hiddenSize: 3, inputShape: [steps, 2], returnSequences: true, seed: 43),
                                Dense(outputSize: 1, seed: 44)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD(learningRate: rate))
        var weights = model.weights   // kernel, recurrent kernel, bias, Dense kernel, Dense bias

        // The reference, written out: every k1 steps, the loss of those steps backpropagated over the last k2,
        // from the state carried forward (a plain value) from where the window starts.
        var startState = Tensor.zeros([batch, 3])
        var end = 0
        while end < steps {
            let newEnd = min(steps, end + k1), start = max(0, newEnd - k2), nextStart = max(0, min(steps, newEnd + k1) - k2)
            let tape = Tape()
            let p = weights.map { tape.variable($0) }
            var h = tape.constant(startState)
            var nextState = startState
            var outputs: [Node] = []
            for t in start..<newEnd {
                let xt = tape.constant(x.slice(along: 1, t..<(t + 1)).reshaped(to: [batch, 2]))
                h = tanh(xt.matmul(p[0]) + h.matmul(p[1]) + p[2])
                if t + 1 == nextStart { nextState = h.value }
                if t >= end { outputs.append((h.matmul(p[3]) + p[4]).reshaped(to: [batch, 1, 1])) }
            }
            let target = tape.constant(y.slice(along: 1, end..<newEnd))
            let loss = square(concatenate(outputs, along: 1) - target).mean()
            tape.backward(from: loss)
            weights = zip(weights, p).map { $0 - tape.gradient(of: $1) * rate }
            startState = nextState
            end = newEnd
        }

        try model.fit(x, y, epochs: 1, batchSize: batch, shuffle: false, verbose: .silent,
                      truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2)
        for (i, (actual, expected)) in zip(model.weights, weights).enumerated() {
            assertClose(actual, expected, tolerance: 1e-5, "batch \(batch): weight \(i) after BPTT(\(k1), \(k2))")
        }
    }

    func testTruncationCarriesTheStateAcrossWindows() throws {
        // 40 steps in windows of k1 = 5 backpropagated over k2 = 10: only the first two windows see the value to
        // remember, so without the carry six windows in eight score the variance (loss ≥ 3/4 of it).
        Initializers.resetSeedSequence(to: 45)
        let (x, y) = rememberTheFirstValue(sequences: 16, steps: 40, seed: 46)
        let model = Sequential([LSTM(hiddenSize: 8, inputShape: [40, 1], returnSequences: true), Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.03))
        let history = try model.fit(x, y, epochs: 40, batchSize: 16, verbose: .silent,
                                    truncatedBPTTSteps: 5, truncatedBPTTBackwardSteps: 10)
        let variance = y.slice(along: 1, 0..<1).scalars.reduce(0) { $0 + $1 * $1 } / 16
        XCTAssertLessThan(history["loss"].last!, variance / 4, "loss \(history["loss"]) against variance \(variance)")
    }

    func testTruncationSettingsAreChecked() throws {
        let model = Sequential([LSTM(hiddenSize: 2, inputShape: [6, 1], returnSequences: true), Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let (x, y) = (Tensor.zeros([2, 6, 1]), Tensor.zeros([2, 6, 1]))
        XCTAssertThrowsError(try model.fit(x, y, verbose: .silent, truncatedBPTTSteps: 3, truncatedBPTTBackwardSteps: 2)) {
            XCTAssertTrue("\($0)".contains("truncatedBPTTBackwardSteps"), "\($0)")
        }
        XCTAssertThrowsError(try model.fit(x, y, verbose: .silent, truncatedBPTTBackwardSteps: 2))
    }

    func testStatefulFitCarriesStateFromBatchToBatch() throws {
        // Four sequences of 30 steps, cut into three chunks of 10: batch k holds chunk k of every sequence, so
        // row i of each batch continues row i of the one before (Keras' stateful layout).
        Initializers.resetSeedSequence(to: 47)
        let (whole, targets) = rememberTheFirstValue(sequences: 4, steps: 30, seed: 48)
        let chunks = (0..<3).map { k in (whole.slice(along: 1, (10 * k)..<(10 * k + 10)), targets.slice(along: 1, (10 * k)..<(10 * k + 10))) }
        let x = Tensor.concatenate(chunks.map(\.0), along: 0), y = Tensor.concatenate(chunks.map(\.1), along: 0)
        func train(isStateful: Bool) throws -> (Sequential, Float) {
            let model = Sequential([LSTM(hiddenSize: 8, inputShape: [10, 1], returnSequences: true, isStateful: isStateful),
                                    Dense(outputSize: 1)])
            try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.03))
            let history = try model.fit(x, y, epochs: 60, batchSize: 4, shuffle: false, callbacks: [ResetStates()], verbose: .silent)
            return (model, history["loss"].last!)
        }
        let variance = whole.slice(along: 1, 0..<1).scalars.reduce(0) { $0 + $1 * $1 } / 4
        let (stateful, carried) = try train(isStateful: true)
        let (_, reset) = try train(isStateful: false)
        XCTAssertLessThan(carried, variance / 10, "stateful loss \(carried), variance \(variance)")
        XCTAssertGreaterThan(reset, variance / 2, "without the carry, two chunks in three cannot know the value: \(reset)")
        XCTAssertNil((stateful.layers[0] as! LSTM).carriedState, "ResetStates cleared the state after the last epoch")
    }

    func testStatefulFitRejectsBatchesThatCannotContinueEachOther() throws {
        let layer = GRU(hiddenSize: 2, inputShape: [5, 1], isStateful: true)
        let model = Sequential([layer, Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let (x, y) = (Tensor.zeros([8, 5, 1]), Tensor.zeros([8, 1]))
        XCTAssertThrowsError(try model.fit(x, y, batchSize: 4, verbose: .silent)) {   // shuffle defaults to true
            XCTAssertTrue("\($0)".contains("shuffle"), "\($0)")
        }
        XCTAssertThrowsError(try model.fit(x, y, batchSize: 3, shuffle: false, verbose: .silent)) {
            XCTAssertTrue("\($0)".contains("last batch of 2"), "\($0)")
        }
        try model.fit(x, y, batchSize: 4, shuffle: false, verbose: .silent)
        XCTAssertEqual(layer.carriedState?.first?.shape, [4, 2])
        XCTAssertThrowsError(try model.fit(x, y, batchSize: 2, shuffle: false, verbose: .silent)) {
            XCTAssertTrue("\($0)".contains("carries a state for batches of 4"), "\($0)")
        }
        model.resetStates()
        XCTAssertNoThrow(try model.fit(x, y, batchSize: 2, shuffle: false, verbose: .silent))
        XCTAssertThrowsError(try model.fit(x, y, batchSize: 2, shuffle: false, verbose: .silent, truncatedBPTTSteps: 2))
    }
}
