import Graph
import Layers
import TestSupport
import XCTest

/// Parity with PyTorch autograd (float64 reference) for every recurrent fixture: outputs, final
/// states, the loss `sum(output ⊙ R)`, and the gradients of the input and of every parameter, with the
/// weights loaded through the PyTorch converters (so the converters are checked too).
final class FixtureParityTests: XCTestCase {
    /// The recurrent fixtures this suite compares; every other `.json` in the folder must be claimed by another suite.
    static let recurrentFixtures = ["simple_rnn", "lstm", "peephole_lstm", "gru", "gru_reset_before", "indrnn",
                                    "lstm_stacked2", "lstm_bidirectional"]
    static let fixturesComparedElsewhere = ["optimizer_adam", "optimizer_sgd_momentum", "optimizer_rmsprop"]
    static let tolerance: Float = 1e-4

    func testEveryFixtureInTheFolderIsCompared() throws {
        let names = try Fixture.allNames()
        XCTAssertFalse(names.isEmpty, "no fixtures found in \(Fixture.folder.path)")
        for name in names where !Self.recurrentFixtures.contains(name) && !Self.fixturesComparedElsewhere.contains(name) {
            XCTFail("fixture \(name).json is present but no test compares it")
        }
        for name in Self.recurrentFixtures + Self.fixturesComparedElsewhere where !names.contains(name) {
            XCTFail("fixture \(name).json is missing from \(Fixture.folder.path)")
        }
    }

    /// Runs `forward` on the fixture's input on a tape, backpropagates `sum(output ⊙ R)`, and compares
    /// everything; `forward` returns the output and the final states keyed like the fixture's `finalState`.
    func checkParity(_ name: String, parameters: () -> [Parameter],
                     gradients: () -> [String: Tensor],
                     _ forward: (Node) throws -> (Node, [String: Tensor])) throws {
        let fixture = try Fixture(name)
        let tape = Tape()
        let input = tape.variable(try fixture.tensor("input"))
        let (output, states) = try forward(input)
        let loss = (output * tape.constant(try fixture.tensor("lossWeights"))).sum()
        tape.backward(from: loss)
        assertClose(output.value, try fixture.tensor("output"), tolerance: Self.tolerance, "\(name) output")
        var worst = relativeError(output.value, try fixture.tensor("output"))
        let expectedStates = try fixture.keys("finalState")
        XCTAssertEqual(expectedStates, states.keys.sorted(), "\(name) final state keys")
        for key in expectedStates {
            assertClose(states[key]!, try fixture.tensor("finalState", key), tolerance: Self.tolerance, "\(name) finalState.\(key)")
        }
        let expectedLoss = try fixture.double("loss")
        XCTAssertEqual(Double(loss.value.scalar), expectedLoss, accuracy: Double(Self.tolerance) * max(1, abs(expectedLoss)), "\(name) loss")
        assertClose(tape.gradient(of: input), try fixture.tensor("grads", "input"), tolerance: Self.tolerance, "\(name) grad input")
        let ours = gradients()
        let names = try fixture.keys("grads").filter { $0 != "input" }
        XCTAssertEqual(names, ours.keys.sorted(), "\(name) gradient names")
        for key in names {
            guard let gradient = ours[key] else { continue }
            assertClose(gradient, try fixture.tensor("grads", key), tolerance: Self.tolerance, "\(name) grad \(key)")
            worst = max(worst, relativeError(gradient, try fixture.tensor("grads", key)))
        }
        worst = max(worst, relativeError(tape.gradient(of: input), try fixture.tensor("grads", "input")))
        print("fixture \(name): largest relative error over output and gradients \(worst)")
        XCTAssertFalse(parameters().isEmpty)
    }

    func stateDict(_ name: String) throws -> [String: Tensor] {
        let fixture = try Fixture(name)
        return try Dictionary(uniqueKeysWithValues: fixture.keys("params").map { ($0, try fixture.tensor("params", $0)) })
    }

    /// The sizes a fixture states for itself: every layer is built from them, none is hard-coded.
    struct Sizes {
        let steps: Int, features: Int, hidden: Int
        init(_ name: String) throws {
            let fixture = try Fixture(name)
            (steps, features, hidden) = (try fixture.int("steps"), try fixture.int("features"), try fixture.int("hidden"))
        }
    }

    /// One-layer fixtures: unsuffixed names; `makeLayer` receives the fixture's hidden size.
    func checkSingleLayer<Cell: PyTorchConvertible>(_ name: String, _ makeLayer: (Int) -> RNN<Cell>,
                                                     stateNames: [String]) throws {
        let fixture = try Fixture(name)
        let layer = makeLayer(try Sizes(name).hidden)
        try layer.build(inputShape: [try fixture.int("steps"), try fixture.int("features")])
        try layer.cell.loadPyTorch(try stateDict(name))
        try checkParity(name, parameters: { layer.parameters }, gradients: { layer.cell.pyTorchGradients() }) { input in
            let (output, state) = layer(input, initialState: nil)
            return (output, Dictionary(uniqueKeysWithValues: zip(stateNames, state.nodes.map(\.value))))
        }
    }

    func testSimpleRNN() throws {
        try checkSingleLayer("simple_rnn", { SimpleRNN(hiddenSize: $0, returnSequences: true) }, stateNames: ["h"])
    }

    func testLSTM() throws {
        try checkSingleLayer("lstm", { LSTM(hiddenSize: $0, returnSequences: true) }, stateNames: ["h", "c"])
    }

    func testPeepholeLSTM() throws {
        try checkSingleLayer("peephole_lstm", { PeepholeLSTM(hiddenSize: $0, returnSequences: true) }, stateNames: ["h", "c"])
    }

    func testGRUResetAfter() throws {
        try checkSingleLayer("gru", { GRU(hiddenSize: $0, returnSequences: true) }, stateNames: ["h"])
    }

    func testGRUResetBefore() throws {
        try checkSingleLayer("gru_reset_before", { GRU(hiddenSize: $0, returnSequences: true, resetAfter: false) }, stateNames: ["h"])
    }

    func testIndRNN() throws {
        try checkSingleLayer("indrnn", { IndRNN(hiddenSize: $0, returnSequences: true) }, stateNames: ["h"])
    }

    func testStackedLSTMLayers() throws {
        let size = try Sizes("lstm_stacked2")
        let lower = LSTM(hiddenSize: size.hidden, inputShape: [size.steps, size.features], returnSequences: true)
        let upper = LSTM(hiddenSize: size.hidden, inputShape: [size.steps, size.hidden], returnSequences: true)
        let weights = try stateDict("lstm_stacked2")
        try lower.loadPyTorch(weights, layerIndex: 0)
        try upper.loadPyTorch(weights, layerIndex: 1)
        try checkParity("lstm_stacked2", parameters: { lower.parameters + upper.parameters },
                        gradients: { lower.cell.pyTorchGradients(suffix: "_l0").merging(upper.cell.pyTorchGradients(suffix: "_l1")) { a, _ in a } }) { input in
            let (middle, lowerState) = lower(input, initialState: nil)
            let (output, upperState) = upper(middle, initialState: nil)
            return (output, Self.layered([lowerState.nodes, upperState.nodes]))
        }
    }

    func testStackedCellsForm() throws {
        let size = try Sizes("lstm_stacked2")
        let stack = StackedCells([LSTMCell(hiddenSize: size.hidden), LSTMCell(hiddenSize: size.hidden)])
        let layer = RNN(stack, returnSequences: true, inputShape: [size.steps, size.features])
        let weights = try stateDict("lstm_stacked2")
        try stack.cells[0].loadPyTorch(weights, suffix: "_l0")
        try stack.cells[1].loadPyTorch(weights, suffix: "_l1")
        try checkParity("lstm_stacked2", parameters: { layer.parameters },
                        gradients: { stack.cells[0].pyTorchGradients(suffix: "_l0").merging(stack.cells[1].pyTorchGradients(suffix: "_l1")) { a, _ in a } }) { input in
            let (output, state) = layer(input, initialState: nil)
            return (output, Self.layered(state.layers.map(\.nodes)))
        }
    }

    func testBidirectionalLSTM() throws {
        let size = try Sizes("lstm_bidirectional")
        let layer = Bidirectional(LSTM(hiddenSize: size.hidden, inputShape: [size.steps, size.features], returnSequences: true))
        try layer.loadPyTorch(try stateDict("lstm_bidirectional"))
        try checkParity("lstm_bidirectional", parameters: { layer.parameters },
                        gradients: { layer.forward.cell.pyTorchGradients(suffix: "_l0").merging(layer.backward.cell.pyTorchGradients(suffix: "_l0_reverse")) { a, _ in a } }) { input in
            let output = layer(input)
            // The final states come from running each direction again untaped (same weights).
            let forwardState = layer.forward.run(Node(input.value)).finalState
            let backwardState = layer.backward.run(Node(input.value)).finalState
            return (output, Self.layered([forwardState.nodes, backwardState.nodes]))
        }
    }

    /// Stacks per-layer `[h, c]` into `h: [layers, batch, hidden]`, `c: ...` as torch.nn reports them.
    static func layered(_ states: [[Node]]) -> [String: Tensor] {
        let keys = ["h", "c"]
        var result: [String: Tensor] = [:]
        for (k, key) in keys.enumerated() where k < states[0].count {
            result[key] = Tensor.concatenate(states.map { $0[k].value.reshaped(to: [1] + $0[k].shape) }, along: 0)
        }
        return result
    }
}
