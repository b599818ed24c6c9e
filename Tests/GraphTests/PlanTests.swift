import Graph
import TestSupport
import XCTest

/// A compiled ``Plan`` computes what eager execution computes: values and gradients, fused and unfused.
final class PlanTests: XCTestCase {
    /// Traces `body` on `inputs` (as variables), compiles it fused and unfused, and compares the replays on new
    /// values with eager execution on those values: the output and every input's gradient.
    func checkReplay(_ label: String, _ inputs: [Tensor], other: [Tensor], tolerance: Float = 1e-6,
                     file: StaticString = #filePath, line: UInt = #line, _ body: ([Node]) -> Node) {
        for fusing in [false, true] {
            let tape = Tape()
            let nodes = inputs.map { tape.variable($0) }
            let output = body(nodes)
            let loss = (output * output).sum()
            let plan = Plan(tape: tape, inputs: nodes, outputs: [output, loss], differentiating: loss, gradients: nodes,
                            fusing: fusing)
            for values in [other, inputs] {
                let eager = Tape()
                let eagerNodes = values.map { eager.variable($0) }
                let eagerOutput = body(eagerNodes)
                let eagerLoss = (eagerOutput * eagerOutput).sum()
                eager.backward(from: eagerLoss)
                let replayed = plan.replay(values)
                assertClose(replayed[0], eagerOutput.value, tolerance: tolerance, "\(label) fusing \(fusing) output", file: file, line: line)
                for k in values.indices {
                    assertClose(replayed[2 + k], eager.gradient(of: eagerNodes[k]), tolerance: tolerance,
                                "\(label) fusing \(fusing) gradient \(k)", file: file, line: line)
                }
            }
        }
    }

    func testGateSlicesFeedingOneSweep() {
        let x = Tensor.randomUniform([3, 8], in: -1...1, seed: 1), c = Tensor.randomUniform([3, 4], in: -1...1, seed: 2)
        let x2 = Tensor.randomUniform([3, 8], in: -1...1, seed: 3), c2 = Tensor.randomUniform([3, 4], in: -1...1, seed: 4)
        checkReplay("gates", [x, c], other: [x2, c2]) { n in
            let i = sigmoid(n[0].slice(along: 1, 0..<4)), g = tanh(n[0].slice(along: 1, 4..<8))
            return i * g + n[1] * i
        }
    }

    func testChainWithBiasRow() {
        let x = Tensor.randomUniform([4, 5], in: -1...1, seed: 5), b = Tensor.randomUniform([5], in: -1...1, seed: 6)
        let x2 = Tensor.randomUniform([4, 5], in: -1...1, seed: 7), b2 = Tensor.randomUniform([5], in: -1...1, seed: 8)
        checkReplay("bias", [x, b], other: [x2, b2]) { n in tanh(n[0] + n[1]) * 2 - sigmoid(n[0]) }
    }
}
