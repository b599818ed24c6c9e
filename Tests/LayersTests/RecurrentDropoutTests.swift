import Graph
@testable import Layers
import TestSupport
import XCTest

/// `dropout` and `recurrentDropout` inside recurrent layers: one mask per sequence reused at every step,
/// seeded, off in inference.
final class RecurrentDropoutTests: XCTestCase {
    let x = Tensor(shape: [3, 6, 4], scalars: (0..<72).map { Float(($0 * 5) % 9) / 9 - 0.3 })

    /// The layer's output equals a hand-written loop over the cell that applies the same two masks at every step.
    func testOneMaskPerSequenceReusedAtEveryStep() {
        for layer in [LSTM(hiddenSize: 5, returnSequences: true, dropout: 0.4, recurrentDropout: 0.3, seed: 1),
                      SimpleRNN(hiddenSize: 5, returnSequences: true, dropout: 0.4, recurrentDropout: 0.3, seed: 1)] as [any Layer] {
            func run<Cell>(_ rnn: RNN<Cell>) {
                rnn.cell.build(inputSize: 4)
                rnn.seedDropout(9)
                let tape = Tape()
                let (inputMask, recurrentMask) = rnn.dropoutMasks(for: tape.constant(x))
                XCTAssertEqual(inputMask?.shape, [3, 1, 4])
                XCTAssertEqual(recurrentMask?.shape, [3, 5])
                let dropped = inputMask!.value.scalars.filter { $0 == 0 }.count
                XCTAssertTrue(dropped > 0 && dropped < 12, "some features dropped, not all: \(dropped)")
                XCTAssertTrue(inputMask!.value.scalars.allSatisfy { $0 == 0 || abs($0 - 1 / 0.6) < 1e-6 })
                rnn.seedDropout(9)
                let output = rnn(tape.constant(x))
                var state = Cell.State(nodes: rnn.cell.zeroState(batchSize: 3).nodes)
                var expected: [Node] = []
                let masked = Node(x) * Node(inputMask!.value)
                for t in 0..<6 {
                    let step = rnn.cell.projectInput(masked.slice(along: 1, t..<(t + 1)).reshaped(to: [3, 4]))
                    let (out, next) = rnn.cell(step, state: state, recurrentMask: Node(recurrentMask!.value))
                    expected.append(out)
                    state = next
                }
                assertClose(output.value, RNN<Cell>.stack(expected).value, tolerance: 1e-6, rnn.typeName)
            }
            if let lstm = layer as? LSTM { run(lstm) } else if let simple = layer as? SimpleRNN { run(simple) }
        }
    }

    func testOffInInferenceSeededInTraining() {
        let layer = GRU(hiddenSize: 4, dropout: 0.5, recurrentDropout: 0.5, seed: 2)
        let plain = GRU(hiddenSize: 4, seed: 2)
        let inference = layer(Node(x)).value
        assertClose(inference, plain(Node(x)).value, tolerance: 0, "no tape: no dropout")
        assertClose(layer(Tape(isTraining: false).constant(x)).value, inference, tolerance: 0, "a tape not training: no dropout")
        layer.seedDropout(3)
        let first = layer(Tape().constant(x)).value
        layer.seedDropout(3)
        XCTAssertEqual(layer(Tape().constant(x)).value.scalars, first.scalars, "the same seed, the same masks")
        XCTAssertNotEqual(layer(Tape().constant(x)).value.scalars, first.scalars, "each call draws new masks")
        XCTAssertGreaterThan(relativeError(first, inference), 1e-3)
        XCTAssertFalse(layer.supportsCompilation, "a compiled plan would freeze the masks")
        XCTAssertEqual(LSTM(hiddenSize: 2, dropout: 1).invalidSettings.map(\.setting), ["dropout"])
        XCTAssertEqual(GRU(hiddenSize: 2, recurrentDropout: -0.1).invalidSettings.map(\.setting), ["recurrentDropout"])
    }

    /// The GRU's recurrent mask reaches its recurrent products but not its update `z ⊙ h + (1 − z) ⊙ candidate`.
    func testGRURecurrentMaskLeavesTheUpdateAlone() {
        let cell = GRUCell(hiddenSize: 3, seed: 4)
        cell.build(inputSize: 2)
        let input = cell.projectInput(Node(Tensor(shape: [1, 2], scalars: [0.3, -0.2])))
        let h = Node(Tensor(shape: [1, 3], scalars: [0.5, -0.4, 0.9]))
        let zeros = Node(Tensor.zeros([1, 3]))
        // With every unit dropped the products see h = 0, so the candidate and gates are those of a zero
        // state, while the update still mixes in the real h.
        let (dropped, _) = cell(input, state: h, recurrentMask: zeros)
        let (fromZero, _) = cell(input, state: zeros)
        let bias = cell.parameters[2].value
        let z = sigmoid(Node(input.value.slice(along: 1, 0..<3)) + Node(bias.slice(along: 0, 1..<2).reshaped(to: [9]).slice(along: 0, 0..<3)))
        // fromZero = (1 − z) ⊙ candidate (its h is 0); dropped adds z ⊙ h.
        assertClose(dropped.value, (fromZero + z * h).value, tolerance: 1e-6)
    }
}
