import Graph
import Layers
import TestSupport
import XCTest

/// A compiled ``Plan`` replays every recurrent fixture's step like eager execution: outputs, the loss, the
/// input gradient and every parameter gradient within 1e-6 (relative to each tensor's largest magnitude), on
/// the traced batch and on a new one, fused and unfused, bitwise the same on every replay.
final class CompiledParityTests: XCTestCase {
    static let tolerance: Float = 1e-6

    func checkCompiled(_ name: String, parameters: [Parameter], _ forward: (Node) -> Node) throws {
        let fixture = try Fixture(name)
        let traced = try fixture.tensor("input")
        let weights = try fixture.tensor("lossWeights")
        let other = traced * 0.5 + 0.1
        for fusing in [false, true] {
            let tape = Tape()
            let input = tape.variable(traced)
            let output = forward(input)
            let loss = (output * tape.constant(weights)).sum()
            let plan = Plan(tape: tape, inputs: [input], outputs: [output, loss], differentiating: loss,
                            gradients: [input], fusing: fusing)
            for x in [other, traced] {
                parameters.forEach { $0.zeroGradient() }
                let eagerTape = Tape()
                let eagerInput = eagerTape.variable(x)
                let eagerOutput = forward(eagerInput)
                let eagerLoss = (eagerOutput * eagerTape.constant(weights)).sum()
                eagerTape.backward(from: eagerLoss)
                let eagerGradients = parameters.map { $0.gradient ?? Tensor.zeros($0.shape) }
                parameters.forEach { $0.zeroGradient() }
                let replayed = plan.replay([x])
                let label = "\(name) (fusing: \(fusing))"
                assertClose(replayed[0], eagerOutput.value, tolerance: Self.tolerance, "\(label) output")
                assertClose(replayed[1], eagerLoss.value, tolerance: Self.tolerance, "\(label) loss")
                assertClose(replayed[2], eagerTape.gradient(of: eagerInput), tolerance: Self.tolerance, "\(label) input gradient")
                let compiledGradients = parameters.map { $0.gradient ?? Tensor.zeros($0.shape) }
                for (k, parameter) in parameters.enumerated() {
                    assertClose(compiledGradients[k], eagerGradients[k], tolerance: Self.tolerance, "\(label) gradient of \(parameter.name)")
                }
                parameters.forEach { $0.zeroGradient() }
                let again = plan.replay([x])
                XCTAssertEqual(again, replayed, "\(label): a second replay differs")
                XCTAssertEqual(parameters.map { $0.gradient ?? Tensor.zeros($0.shape) }, compiledGradients,
                               "\(label): a second replay's parameter gradients differ")
                parameters.forEach { $0.zeroGradient() }
            }
        }
    }

    func checkSingleLayer<Cell: PyTorchConvertible>(_ name: String, _ layer: RNN<Cell>) throws {
        let fixture = try Fixture(name)
        try layer.build(inputShape: [try fixture.int("steps"), try fixture.int("features")])
        let stateDict = try Dictionary(uniqueKeysWithValues: fixture.keys("params").map { ($0, try fixture.tensor("params", $0)) })
        try layer.cell.loadPyTorch(stateDict)
        try checkCompiled(name, parameters: layer.parameters) { layer($0) }
    }

    func testSimpleRNN() throws { try checkSingleLayer("simple_rnn", SimpleRNN(hiddenSize: 6, returnSequences: true)) }
    func testLSTM() throws { try checkSingleLayer("lstm", LSTM(hiddenSize: 6, returnSequences: true)) }
    func testPeepholeLSTM() throws { try checkSingleLayer("peephole_lstm", PeepholeLSTM(hiddenSize: 6, returnSequences: true)) }
    func testGRUResetAfter() throws { try checkSingleLayer("gru", GRU(hiddenSize: 6, returnSequences: true)) }
    func testGRUResetBefore() throws {
        try checkSingleLayer("gru_reset_before", GRU(hiddenSize: 6, returnSequences: true, resetAfter: false))
    }
    func testCheckpointedLSTM() throws {
        let layer = LSTM(hiddenSize: 6, returnSequences: true)
        layer.checkpointing = .every(2)
        try checkSingleLayer("lstm", layer)
    }

    func testIndRNN() throws { try checkSingleLayer("indrnn", IndRNN(hiddenSize: 6, returnSequences: true)) }

    func testStackedLSTMLayers() throws {
        let lower = LSTM(hiddenSize: 6, inputShape: [5, 4], returnSequences: true)
        let upper = LSTM(hiddenSize: 6, inputShape: [5, 6], returnSequences: true)
        let fixture = try Fixture("lstm_stacked2")
        let weights = try Dictionary(uniqueKeysWithValues: fixture.keys("params").map { ($0, try fixture.tensor("params", $0)) })
        try lower.loadPyTorch(weights, layerIndex: 0)
        try upper.loadPyTorch(weights, layerIndex: 1)
        try checkCompiled("lstm_stacked2", parameters: lower.parameters + upper.parameters) { upper(lower($0)) }
    }

    func testBidirectionalLSTM() throws {
        let layer = Bidirectional(LSTM(hiddenSize: 6, inputShape: [5, 4], returnSequences: true))
        let fixture = try Fixture("lstm_bidirectional")
        try layer.loadPyTorch(try Dictionary(uniqueKeysWithValues: fixture.keys("params").map { ($0, try fixture.tensor("params", $0)) }))
        try checkCompiled("lstm_bidirectional", parameters: layer.parameters) { layer($0) }
    }
}
