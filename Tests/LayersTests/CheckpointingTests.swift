import Graph
import Layers
import TestSupport
import XCTest

/// Checkpointed backpropagation through time gives the gradients of plain BPTT, for every cell.
final class CheckpointingTests: XCTestCase {
    /// Returns the input gradient and every parameter's gradient of a weighted sum of the layer's output.
    func gradients<Cell: RecurrentCell>(_ layer: RNN<Cell>, _ x: Tensor, initialState: [Tensor]? = nil) -> [Tensor] {
        let tape = Tape()
        let input = tape.variable(x)
        let state = initialState.map { Cell.State(nodes: $0.map { tape.variable($0) }) }
        let (output, final) = layer(input, initialState: state)
        let weights = tape.constant(Tensor.randomUniform(output.shape, in: 0.5...1.5, seed: 31))
        let finalWeights = final.nodes.map { tape.constant(Tensor.randomUniform($0.shape, in: -1...1, seed: 32)) }
        let loss = zip(final.nodes, finalWeights).reduce((output * weights).sum()) { $0 + ($1.0 * $1.1).sum() }
        tape.backward(from: loss)
        defer { layer.parameters.forEach { $0.zeroGradient() } }
        let segments = layer.checkpointing.segmentLength(forSteps: x.shape[1]).map { (x.shape[1] + $0 - 1) / $0 } ?? 0
        XCTAssertEqual(tape.opCounts["checkpoint"] ?? 0, segments == 1 ? 0 : segments, "\(layer.checkpointing) records one node per segment")
        return [tape.gradient(of: input)] + (state?.nodes.map { tape.gradient(of: $0) } ?? [])
            + layer.parameters.map { $0.gradient ?? Tensor.zeros($0.shape) }
    }

    func assertCheckpointingIsExact<Cell: RecurrentCell>(_ layer: RNN<Cell>, _ name: String, steps: Int = 11,
                                                         file: StaticString = #filePath, line: UInt = #line) {
        let x = Tensor.randomUniform([3, steps, 2], in: -1...1, seed: 33)
        let h0 = layer.cell.zeroState(batchSize: 3).nodes.enumerated().map {
            Tensor.randomUniform($0.element.shape, in: -0.5...0.5, seed: 34 + UInt64($0.offset))
        }
        for initial in [nil, h0] {
            layer.checkpointing = .none
            let expected = gradients(layer, x, initialState: initial)
            for mode in [Checkpointing.every(1), .every(3), .every(4), .automatic] {
                for compiles in [false, true] {
                    layer.checkpointing = mode
                    layer.compilesCheckpointedSegments = compiles
                    let actual = gradients(layer, x, initialState: initial)
                    XCTAssertEqual(actual.count, expected.count, file: file, line: line)
                    for (i, (a, e)) in zip(actual, expected).enumerated() {
                        assertClose(a, e, tolerance: 1e-6, "\(name) \(mode) compiled \(compiles) initial state \(initial != nil): "
                                    + "gradient \(i)", file: file, line: line)
                    }
                }
            }
        }
        layer.checkpointing = .none
    }

    func testEveryBuiltInCellMatchesPlainBackpropagationThroughTime() {
        for returnSequences in [false, true] {
            for goBackwards in [false, true] {
                let label = "sequences \(returnSequences) backwards \(goBackwards)"
                assertCheckpointingIsExact(LSTM(hiddenSize: 4, returnSequences: returnSequences, goBackwards: goBackwards, seed: 1), "LSTM \(label)")
                assertCheckpointingIsExact(GRU(hiddenSize: 4, returnSequences: returnSequences, goBackwards: goBackwards, seed: 2), "GRU \(label)")
                assertCheckpointingIsExact(GRU(hiddenSize: 4, returnSequences: returnSequences, goBackwards: goBackwards,
                                               resetAfter: false, seed: 3), "GRU classic \(label)")
                assertCheckpointingIsExact(SimpleRNN(hiddenSize: 4, returnSequences: returnSequences, goBackwards: goBackwards, seed: 4),
                                           "SimpleRNN \(label)")
                assertCheckpointingIsExact(PeepholeLSTM(hiddenSize: 4, returnSequences: returnSequences, goBackwards: goBackwards, seed: 5),
                                           "PeepholeLSTM \(label)")
                assertCheckpointingIsExact(IndRNN(hiddenSize: 4, inputShape: [11, 2], returnSequences: returnSequences,
                                                  goBackwards: goBackwards, seed: 6), "IndRNN \(label)")
            }
        }
    }

    func testCustomCellMatchesPlainBackpropagationThroughTime() {
        assertCheckpointingIsExact(RNN(MinimalGatedUnit(hiddenSize: 4)), "MGU")
        assertCheckpointingIsExact(RNN(MinimalGatedUnit(hiddenSize: 4), returnSequences: true), "MGU sequences")
    }

    func testStackedCheckpointedLayersMatch() {
        let lower = LSTM(hiddenSize: 3, returnSequences: true, seed: 7), upper = GRU(hiddenSize: 4, seed: 8)
        let x = Tensor.randomUniform([2, 12, 2], in: -1...1, seed: 35)
        func run() -> [Tensor] {
            let tape = Tape()
            let input = tape.variable(x)
            tape.backward(from: square(upper(lower(input))).sum())
            defer { (lower.parameters + upper.parameters).forEach { $0.zeroGradient() } }
            XCTAssertEqual(tape.opCounts["checkpoint"] ?? 0, lower.checkpointing == .none ? 0 : 4 + 3)
            return [tape.gradient(of: input)] + (lower.parameters + upper.parameters).map { $0.gradient! }
        }
        let expected = run()
        lower.checkpointing = .automatic
        upper.checkpointing = .every(5)
        for (i, (a, e)) in zip(run(), expected).enumerated() { assertClose(a, e, tolerance: 1e-6, "stacked gradient \(i)") }
    }

    func testStatefulCheckpointedLayerCarriesItsState() {
        let plain = GRU(hiddenSize: 3, isStateful: true, seed: 9), checkpointed = GRU(hiddenSize: 3, isStateful: true, seed: 9)
        checkpointed.checkpointing = .every(2)
        let x = Tensor.randomUniform([2, 7, 2], in: -1...1, seed: 36)
        for _ in 0..<2 {
            let tape = Tape()
            let (a, b) = (plain(Tape().constant(x)), checkpointed(tape.constant(x)))
            XCTAssertEqual(tape.opCounts["checkpoint"], 4)
            assertClose(b.value, a.value, tolerance: 1e-6, "outputs of consecutive stateful calls")
        }
    }

    func testInspectionShowsMemoryShrinkingBySegments() throws {
        // T = 400 steps in segments of 20: the tape keeps 20 segment states instead of 400 steps of values,
        // and the backward pass rebuilds one segment (a twentieth of the steps) at a time.
        let layer = GRU(hiddenSize: 16, seed: 10)
        let x = Tensor.randomUniform([4, 400, 3], in: -1...1, seed: 37)
        func record() -> Tape {
            let tape = Tape()
            tape.backward(from: layer(tape.constant(x)).sum())
            layer.parameters.forEach { $0.zeroGradient() }
            return tape
        }
        let full = record()
        layer.checkpointing = .every(20)
        layer.compilesCheckpointedSegments = false
        let checkpointed = record()
        let input = 2 * x.count   // the batch-major input and its time-major copy, kept in both
        let fullPerStep = Double(full.savedScalarCount - input) / 400
        let keptPerStep = Double(checkpointed.savedScalarCount - input) / 400
        let peakPerStep = Double(checkpointed.peakSavedScalarCount - input) / 400
        XCTAssertEqual(checkpointed.opCounts["checkpoint"], 20)
        // Kept: per segment a view of its 20 input rows (counted, though it shares the input's buffer) and one
        // [4, 16] state: 12 + 3.2 scalars per step, against all of a step's values.
        XCTAssertLessThan(keptPerStep, 30, "kept \(keptPerStep) scalars per step")
        XCTAssertLessThan(keptPerStep, fullPerStep / 50, "kept \(keptPerStep) vs \(fullPerStep) scalars per step")
        // Peak: the kept states plus one segment, so about a twentieth of the full tape.
        XCTAssertLessThan(peakPerStep, fullPerStep / 15, "peak \(peakPerStep) vs \(fullPerStep) scalars per step")
        XCTAssertGreaterThan(peakPerStep, fullPerStep / 25, "peak \(peakPerStep) vs \(fullPerStep) scalars per step")
        // Compiled segments keep the same states; a segment's plan reuses its arena, so the peak is lower still.
        layer.compilesCheckpointedSegments = true
        let compiled = record()
        XCTAssertEqual(compiled.savedScalarCount, checkpointed.savedScalarCount)
        XCTAssertGreaterThan(compiled.peakSavedScalarCount, compiled.savedScalarCount)
        XCTAssertLessThan(compiled.peakSavedScalarCount, checkpointed.peakSavedScalarCount)
    }
}
