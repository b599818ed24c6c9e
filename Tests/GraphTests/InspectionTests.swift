import Graph
import TestSupport
import XCTest

/// Graph inspection of an unrolled recurrence, and a hand-written LSTM against PyTorch.
final class InspectionTests: XCTestCase {
    /// Records a 3-step SimpleRNN written by hand: h' = tanh(x_t W + h U + b).
    func recordSimpleRNN(_ tape: Tape) -> (Node, [Parameter]) {
        let w = Parameter("kernel", Tensor.randomUniform([2, 4], in: -0.5...0.5, seed: 1))
        let u = Parameter("recurrent_kernel", Tensor.randomUniform([4, 4], in: -0.5...0.5, seed: 2))
        let b = Parameter("bias", Tensor.zeros([4]))
        let x = tape.constant(Tensor.randomUniform([3, 1, 2], in: -1...1, seed: 3))
        var h = tape.constant(Tensor.zeros([1, 4]))
        for t in 0..<3 {
            h = tape.withScope("rnn") {
                tape.withScope("t\(t)") {
                    let xt = x.slice(along: 0, t..<(t + 1)).reshaped(to: [1, 2])
                    return tanh(xt.matmul(tape.parameter(w)) + h.matmul(tape.parameter(u)) + tape.parameter(b))
                }
            }
        }
        return (h, [w, u, b])
    }

    func testMatrixProductFLOPsCountForwardAndEachGradientProduct() {
        let tape = Tape()
        let (h, _) = recordSimpleRNN(tape)
        _ = h
        // x_t W: 2·1·4·2 = 16 per step; only W needs a gradient. h U: 2·1·4·4 = 32 per step; the first h is a
        // constant (only U needs a gradient), the later ones need theirs too.
        let flops = tape.matrixProductFLOPs
        XCTAssertEqual(flops.forward, 3 * 16 + 3 * 32)
        XCTAssertEqual(flops.backward, 3 * 16 + 32 + 2 * 64)
    }

    func testTensorMemoryCountsLiveBuffersAndThePeak() {
        let before = TensorMemory.liveBytes
        TensorMemory.resetPeak()
        do {
            let big = Tensor.zeros([1 << 20])  // one 4 MiB size class
            XCTAssertEqual(TensorMemory.liveBytes - before, 4 << 20)
            let copy = big + big
            XCTAssertEqual(TensorMemory.liveBytes - before, 8 << 20)
            XCTAssertEqual(copy.count, 1 << 20)
        }
        XCTAssertEqual(TensorMemory.liveBytes, before)
        XCTAssertGreaterThanOrEqual(TensorMemory.peakBytes - before, 8 << 20)
    }

    func testUnrolledStepsShareParameterNodes() {
        let tape = Tape()
        let (h, parameters) = recordSimpleRNN(tape)
        let nodes = tape.nodes
        let parameterNodes = nodes.filter { if case .parameter = $0.kind { return true } else { return false } }
        XCTAssertEqual(parameterNodes.map(\.shape), [[2, 4], [4, 4], [4]], "each parameter recorded once")
        XCTAssertEqual(parameterNodes.count, parameters.count)
        // Per step: slice, reshape, matmul ×2, add ×2, tanh.
        XCTAssertEqual(tape.opCounts["slice"], 3)
        XCTAssertEqual(tape.opCounts["reshape"], 3)
        XCTAssertEqual(tape.opCounts["matmul"], 6)
        XCTAssertEqual(tape.opCounts["add"], 6)
        XCTAssertEqual(tape.opCounts["tanh"], 3)
        XCTAssertEqual(tape.opCounts["constant"], 2)
        XCTAssertEqual(nodes.count, 2 + 3 + 3 * 7)
        for t in 0..<3 {
            let step = nodes.filter { $0.scope == "rnn/t\(t)" }
            XCTAssertEqual(step.count, 7 + (t == 0 ? 3 : 0), "ops in step \(t) (step 0 also records the parameters)")
        }
        // Every step's recurrent matmul reads the same recurrent-kernel node.
        let recurrentIndex = parameterNodes[1].index
        XCTAssertEqual(nodes.filter { $0.op == "matmul" && $0.inputs.contains(recurrentIndex) }.count, 3)
        XCTAssertEqual(nodes.last!.index, h.index)
        XCTAssertEqual(nodes.last!.op, "tanh")
        XCTAssertEqual(nodes.last!.shape, [1, 4])
        XCTAssertEqual(tape.savedScalarCount, nodes.reduce(0) { $0 + $1.shape.reduce(1, *) })
    }

    func testDOTExportHasEveryNodeAndEdge() {
        let tape = Tape()
        _ = recordSimpleRNN(tape)
        let dot = tape.dot()
        let lines = dot.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let nodeLines = lines.filter { $0.hasPrefix("n") && $0.contains("[label=") }
        let edgeLines = lines.filter { $0.contains(" -> ") }
        XCTAssertEqual(nodeLines.count, tape.count)
        XCTAssertEqual(edgeLines.count, tape.nodes.reduce(0) { $0 + $1.inputs.count })
        XCTAssertEqual(edgeLines.count, 3 * (1 + 1 + 2 + 2 + 2 + 2 + 1), "slice, reshape, 2 matmuls, 2 adds, tanh")
        XCTAssertEqual(lines.filter { $0.contains("shape=box, style=filled") }.count, 3, "parameters drawn as filled boxes")
        XCTAssertTrue(dot.contains("label=\"rnn/t2\""))
        XCTAssertTrue(dot.contains("recurrent_kernel\\n[4, 4]"))
        XCTAssertTrue(dot.hasPrefix("digraph"))
    }

    func testHandWrittenLSTMStepMatchesPyTorch() throws {
        let fixture = try Fixture("lstm")
        let hidden = try fixture.int("hidden"), steps = try fixture.int("steps")
        let tape = Tape()
        let input = tape.variable(try fixture.tensor("input"))
        let names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
        let parameters = try names.map { Parameter($0, try fixture.tensor("params", $0)) }
        let (wih, whh, bih, bhh) = (tape.parameter(parameters[0]), tape.parameter(parameters[1]),
                                    tape.parameter(parameters[2]), tape.parameter(parameters[3]))
        let batch = input.shape[0]
        var h = tape.constant(Tensor.zeros([batch, hidden])), c = h
        var outputs: [Node] = []
        for t in 0..<steps {
            let xt = input.slice(along: 1, t..<(t + 1)).reshaped(to: [batch, -1])
            let gates = xt.matmul(wih, transposingOther: true) + bih + h.matmul(whh, transposingOther: true) + bhh
            func gate(_ k: Int) -> Node { gates.slice(along: 1, (k * hidden)..<((k + 1) * hidden)) }
            let i = sigmoid(gate(0)), f = sigmoid(gate(1)), g = tanh(gate(2)), o = sigmoid(gate(3))
            c = f * c + i * g
            h = o * tanh(c)
            outputs.append(h.reshaped(to: [batch, 1, hidden]))
        }
        let output = concatenate(outputs, along: 1)
        let loss = (output * tape.constant(try fixture.tensor("lossWeights"))).sum()
        tape.backward(from: loss)
        assertClose(output.value, try fixture.tensor("output"), "lstm output")
        assertClose(h.value, try fixture.tensor("finalState", "h"), "lstm final h")
        assertClose(c.value, try fixture.tensor("finalState", "c"), "lstm final c")
        XCTAssertEqual(Double(loss.value.scalar), try fixture.double("loss"), accuracy: 1e-4 * max(1, abs(try fixture.double("loss"))))
        assertClose(tape.gradient(of: input), try fixture.tensor("grads", "input"), "lstm grad input")
        for parameter in parameters {
            assertClose(parameter.gradient!, try fixture.tensor("grads", parameter.name), "lstm grad \(parameter.name)")
        }
    }
}
