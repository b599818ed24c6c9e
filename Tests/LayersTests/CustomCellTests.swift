import Graph
import Layers
import TestSupport
import XCTest

/// The minimal gated unit (Zhou et al., 2016), written by a user from graph nodes only:
/// ```
/// f = σ(x W_f + h U_f + b_f)     ĥ = tanh(x W_h + (f ⊙ h) U_h + b_h)     h' = (1 - f) ⊙ h + f ⊙ ĥ
/// ```
final class MinimalGatedUnit: RecurrentCell {
    let hiddenSize: Int
    var parameters: [Parameter] = []
    var inputSize: Int? { parameters.first?.shape[0] }
    var typeName: String { "MGU" }

    init(hiddenSize: Int) { self.hiddenSize = hiddenSize }

    func build(inputSize: Int) {
        guard parameters.isEmpty else { return }
        parameters = [
            Parameter("kernel", Tensor.randomUniform([inputSize, 2 * hiddenSize], in: -0.5...0.5, seed: 1)),
            Parameter("forget_recurrent", Tensor.randomUniform([hiddenSize, hiddenSize], in: -0.5...0.5, seed: 2)),
            Parameter("candidate_recurrent", Tensor.randomUniform([hiddenSize, hiddenSize], in: -0.5...0.5, seed: 3)),
            Parameter("bias", Tensor.zeros([2 * hiddenSize])),
        ]
    }

    func projectInput(_ input: Node) -> Node {
        input.matmul(input.onSameTape(parameters[0])) + input.onSameTape(parameters[3])
    }

    func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    func callAsFunction(_ projected: Node, state h: Node) -> (output: Node, state: Node) {
        let n = hiddenSize
        let f = sigmoid(projected.slice(along: 1, 0..<n) + h.matmul(h.onSameTape(parameters[1])))
        let candidate = tanh(projected.slice(along: 1, n..<(2 * n)) + (f * h).matmul(h.onSameTape(parameters[2])))
        let next = (1 - f) * h + f * candidate
        return (next, next)
    }
}

final class CustomCellTests: XCTestCase {
    func testCustomCellGradientsMatchFiniteDifferences() {
        let x = Tensor.randomUniform([2, 5, 3], in: -1...1, seed: 4)
        let layer = RNN(MinimalGatedUnit(hiddenSize: 4), returnSequences: true, inputShape: [5, 3])
        checkGradients([x], "MGU input gradient through RNN") { layer($0[0]) }
        layer.parameters.forEach { $0.zeroGradient() }
        // The tape through RNN<MGU> gives the same parameter gradients as the finite-difference-checked graph above.
        let tape = Tape()
        let loss = (layer(tape.constant(x)) * tape.constant(Tensor.randomUniform([2, 5, 4], in: 0.5...1.5, seed: 7))).sum()
        tape.backward(from: loss)
        for parameter in layer.parameters {
            let numeric = numericGradient(of: parameter) {
                (layer(Node(x)).value * Tensor.randomUniform([2, 5, 4], in: 0.5...1.5, seed: 7)).sum().scalar
            }
            assertClose(parameter.gradient!, numeric, tolerance: 2e-2, "MGU \(parameter.name)")
        }
    }

    func testCustomCellTrains() {
        // Learn to output the running mean of the input: loss must fall by 10x with plain gradient descent.
        let layer = RNN(MinimalGatedUnit(hiddenSize: 6), returnSequences: false, inputShape: [8, 1])
        let readout = Dense(inputSize: 6, outputSize: 1, seed: 3)
        let x = Tensor.randomUniform([32, 8, 1], in: 0...1, seed: 5)
        let y = x.mean(alongAxes: [1])
        func step() -> Float {
            let tape = Tape()
            let loss = square(readout(layer(tape.constant(x))) - tape.constant(y)).mean()
            tape.backward(from: loss)
            for parameter in layer.parameters + readout.parameters {
                parameter.value.add(parameter.gradient!, scaledBy: -0.5)
                parameter.zeroGradient()
            }
            return loss.value.scalar
        }
        let first = step()
        var last = first
        for _ in 0..<300 { last = step() }
        XCTAssertLessThan(last, first / 10, "loss \(first) -> \(last)")
    }
}

/// The compiled path of a custom cell: a ``Plan`` replayed with shifted parameters (a plan reads parameters
/// live) gives central finite differences that match the gradients the same plan's backward kernels produce.
final class CompiledCustomCellTests: XCTestCase {
    func testCompiledCustomCellGradientsMatchFiniteDifferences() {
        let x = Tensor.randomUniform([2, 5, 3], in: -1...1, seed: 4)
        let weights = Tensor.randomUniform([2, 5, 4], in: 0.5...1.5, seed: 7)
        let layer = RNN(MinimalGatedUnit(hiddenSize: 4), returnSequences: true, inputShape: [5, 3])
        let tape = Tape()
        let input = tape.constant(x)
        let loss = (layer(input) * tape.constant(weights)).sum()
        let plan = Plan(tape: tape, inputs: [input], outputs: [loss], differentiating: loss)
        XCTAssertTrue(plan.kernels.contains { $0.kind == .fused && $0.nodes.count > 3 }, "the MGU step was not fused")
        layer.parameters.forEach { $0.zeroGradient() }
        _ = plan.replay([x])
        for parameter in layer.parameters {
            let analytic = parameter.gradient!
            let numeric = numericGradient(of: parameter) {
                let gradients = layer.parameters.map(\.gradient)
                defer { for (p, g) in zip(layer.parameters, gradients) { p.gradient = g } }
                return plan.replay([x])[0].scalar
            }
            assertClose(analytic, numeric, tolerance: 2e-2, "compiled MGU \(parameter.name)")
        }
    }
}
