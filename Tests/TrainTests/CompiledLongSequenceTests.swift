import Graph
import Layers
import TestSupport
import Train
import XCTest

/// Truncated BPTT and stateful training compiled: the carried state is a plan input, so one plan serves every
/// window (or batch) of one shape, and the losses and weights are those of eager training.
final class CompiledLongSequenceTests: XCTestCase {
    let x = Tensor.randomUniform([4, 7, 2], in: -1...1, seed: 71)
    let y = Tensor.randomUniform([4, 7, 1], in: -1...1, seed: 72)

    func assertSameTraining(_ expected: History, _ actual: History, _ label: String) {
        for (key, values) in expected.values {
            XCTAssertEqual(actual.values[key]?.count, values.count, "\(label): \(key)")
            for (epoch, (a, e)) in zip(actual.values[key] ?? [], values).enumerated() {
                XCTAssertEqual(a, e, accuracy: 1e-5 * max(abs(e), 1e-6), "\(label): \(key) at epoch \(epoch + 1)")
            }
        }
    }

    func stack(returnSequences: Bool = true, isStateful: Bool = false, jitCompile: Bool) throws -> Sequential {
        let model = Sequential([LSTM(hiddenSize: 3, inputShape: [7, 2], returnSequences: returnSequences, isStateful: isStateful, seed: 73),
                                Dense(outputSize: 1, seed: 74)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.05), metrics: [.meanAbsoluteError],
                          jitCompile: jitCompile)
        return model
    }

    func testCompiledTruncatedBPTTMatchesEagerAndTracesOncePerWindowShape() throws {
        // Seven steps: BPTT(3, 3) runs windows 0..<3 and 3..<6, advances the state over step 3 (a forward plan)
        // and trains 4..<7 scoring its last step (three shapes); BPTT(2, 3) windows
        // of 2 (the first), then 3 scoring 2, and a last of 3 scoring 1 (three shapes, x and y lengths), and
        // advances the state over chunks of 1 and 2 steps between them (two forward plans); one target per
        // sequence with k2 = 4 advances over the first 3 steps and trains one window of 4.
        for (k1, k2, perStep, shapes) in [(3, 3, true, 3), (2, 3, true, 5), (2, 4, false, 2)] {
            let label = "BPTT(\(k1), \(k2))\(perStep ? "" : ", one target per sequence")"
            let targets = perStep ? y : y.slice(along: 1, 6..<7).reshaped(to: [4, 1])
            let eager = try stack(returnSequences: perStep, jitCompile: false)
            let compiled = try stack(returnSequences: perStep, jitCompile: true)
            let expected = try eager.fit(x, targets, epochs: 4, batchSize: 2, verbose: .silent,
                                         truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2, seed: 5)
            let actual = try compiled.fit(x, targets, epochs: 4, batchSize: 2, verbose: .silent,
                                          truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2, seed: 5)
            assertSameTraining(expected, actual, label)
            for (a, e) in zip(compiled.weights, eager.weights) { assertClose(a, e, tolerance: 1e-5, "\(label) weights") }
            XCTAssertEqual(eager.tracedPlanCount, 0, "\(label): the eager model traced")
            XCTAssertEqual(compiled.tracedPlanCount, shapes, "\(label): plans traced over 4 epochs of 2 batches")
        }
    }

    func testCompiledFunctionalTruncatedBPTTMatchesEager() throws {
        func model(jitCompile: Bool) throws -> Model {
            let input = Input(shape: [7, 2])
            let model = try Model(inputs: input, outputs: Dense(outputSize: 1, seed: 74)(LSTM(hiddenSize: 3, returnSequences: true, seed: 73)(input)))
            try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.05), jitCompile: jitCompile)
            return model
        }
        let (eager, compiled) = (try model(jitCompile: false), try model(jitCompile: true))
        let expected = try eager.fit([x], [y], epochs: 3, batchSize: 2, verbose: .silent, truncatedBPTTSteps: 2, truncatedBPTTBackwardSteps: 3)
        let actual = try compiled.fit([x], [y], epochs: 3, batchSize: 2, verbose: .silent, truncatedBPTTSteps: 2, truncatedBPTTBackwardSteps: 3)
        assertSameTraining(expected, actual, "functional BPTT(2, 3)")
        for (a, e) in zip(compiled.weights, eager.weights) { assertClose(a, e, tolerance: 1e-5, "functional weights") }
        XCTAssertEqual(compiled.tracedPlanCount, 5, "three window plans, two forward plans advancing the state")
    }

    func testCompiledStatefulTrainingMatchesEagerAndCarriesTheReplayedState() throws {
        // Two sequences of 21 steps cut into three chunks of 7: batch k holds chunk k of both.
        let chunks = Tensor.concatenate([x, x.slice(along: 0, 0..<2)], along: 0)
        let targets = Tensor.concatenate([y, y.slice(along: 0, 0..<2)], along: 0)
        let eager = try stack(isStateful: true, jitCompile: false)
        let compiled = try stack(isStateful: true, jitCompile: true)
        let expected = try eager.fit(chunks, targets, epochs: 5, batchSize: 2, shuffle: false, callbacks: [ResetStates()], verbose: .silent)
        let actual = try compiled.fit(chunks, targets, epochs: 5, batchSize: 2, shuffle: false, callbacks: [ResetStates()], verbose: .silent)
        assertSameTraining(expected, actual, "stateful")
        for (a, e) in zip(compiled.weights, eager.weights) { assertClose(a, e, tolerance: 1e-5, "stateful weights") }
        XCTAssertEqual(compiled.tracedPlanCount, 1, "one plan for every batch of 15")

        // Without the callback the final state of a replayed step is carried, as eagerly; prediction replays
        // a forward plan from it and carries it on.
        try eager.fit(chunks, targets, epochs: 1, batchSize: 2, shuffle: false, verbose: .silent)
        try compiled.fit(chunks, targets, epochs: 1, batchSize: 2, shuffle: false, verbose: .silent)
        let (eagerLayer, compiledLayer) = (eager.layers[0] as! LSTM, compiled.layers[0] as! LSTM)
        for (a, e) in zip(try XCTUnwrap(compiledLayer.carriedState), try XCTUnwrap(eagerLayer.carriedState)) {
            assertClose(a, e, tolerance: 1e-5, "carried state after a replayed step")
        }
        for round in 0..<2 {
            assertClose(try compiled.predict(x.slice(along: 0, 0..<2), batchSize: 2), try eager.predict(x.slice(along: 0, 0..<2), batchSize: 2),
                        tolerance: 1e-5, "stateful prediction \(round)")
        }
        XCTAssertEqual(compiled.tracedPlanCount, 2, "one forward plan, traced once")
    }

    func testCompiledStatefulCheckpointedLayerMatchesEager() throws {
        // A checkpointed stateful layer: its start state enters the first checkpoint node, a plan input all the same.
        let chunks = Tensor.concatenate([x, x.slice(along: 0, 0..<2)], along: 0)
        let targets = Tensor.concatenate([y, y.slice(along: 0, 0..<2)], along: 0)
        let (eager, compiled) = (try stack(isStateful: true, jitCompile: false), try stack(isStateful: true, jitCompile: true))
        for model in [eager, compiled] { (model.layers[0] as! LSTM).checkpointing = .every(3) }
        let expected = try eager.fit(chunks, targets, epochs: 3, batchSize: 2, shuffle: false, verbose: .silent)
        let actual = try compiled.fit(chunks, targets, epochs: 3, batchSize: 2, shuffle: false, verbose: .silent)
        assertSameTraining(expected, actual, "checkpointed stateful")
        for (a, e) in zip(compiled.weights, eager.weights) { assertClose(a, e, tolerance: 1e-5, "checkpointed stateful weights") }
        XCTAssertEqual(compiled.tracedPlanCount, 1)
    }
}
