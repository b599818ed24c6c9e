import Graph
import TestSupport
import XCTest

/// `Tape.checkpoint`: one recorded node whose backward pass reruns its body.
final class CheckpointTests: XCTestCase {
    let w = Parameter("w", Tensor.randomUniform([3, 3], in: -0.8...0.8, seed: 21))
    let b = Parameter("b", Tensor.randomUniform([3], in: -0.5...0.5, seed: 22))

    /// Three steps of `h' = tanh(x W + h + b)`, returning the final `h` and the sum of the steps' `x W`.
    func body(_ nodes: [Node]) -> [Node] {
        var h = nodes[1]
        var total = nodes[0] * 0
        for _ in 0..<3 {
            let product = nodes[0].matmul(h.onSameTape(w))
            h = tanh(product + h + h.onSameTape(b))
            total = total + product
        }
        return [h, total.sum(alongAxes: [1])]
    }

    func loss(_ outputs: [Node], _ tape: Tape) -> Node {
        (outputs[0] * tape.constant(Tensor.randomUniform([2, 3], in: 0.5...1.5, seed: 23))).sum() + outputs[1].sum()
    }

    func testGradientsEqualRecordingTheBodyDirectly() {
        let x = Tensor.randomUniform([2, 3], in: -1...1, seed: 24), h = Tensor.randomUniform([2, 3], in: -1...1, seed: 25)
        let direct = Tape()
        let (dx, dh) = (direct.variable(x), direct.variable(h))
        let expected = loss(body([dx, dh]), direct)
        direct.backward(from: expected)
        let (gw, gb) = (w.gradient!, b.gradient!)
        w.zeroGradient(); b.zeroGradient()

        let tape = Tape()
        let (cx, ch) = (tape.variable(x), tape.variable(h))
        let outputs = tape.checkpoint([cx, ch], body: body)
        XCTAssertEqual(outputs.map(\.shape), [[2, 3], [2]])
        let value = loss(outputs, tape)
        XCTAssertEqual(value.value, expected.value, "the forward values are the same")
        XCTAssertEqual(tape.opCounts["checkpoint"], 1)
        XCTAssertNil(tape.opCounts["tanh"], "nothing between the inputs and the outputs is kept")
        tape.backward(from: value)
        XCTAssertEqual(tape.gradient(of: cx), direct.gradient(of: dx), "same arithmetic, same bits")
        XCTAssertEqual(tape.gradient(of: ch), direct.gradient(of: dh))
        XCTAssertEqual(w.gradient, gw, "parameters lifted in the body receive their gradients")
        XCTAssertEqual(b.gradient, gb)
        XCTAssertGreaterThan(tape.peakSavedScalarCount, tape.savedScalarCount, "the rerun's tape counts toward the peak")
        w.zeroGradient(); b.zeroGradient()
    }

    func testCompiledBodyGivesTheSameGradientsAndIsKept() {
        let x = Tensor.randomUniform([2, 3], in: -1...1, seed: 28), h = Tensor.randomUniform([2, 3], in: -1...1, seed: 29)
        let direct = Tape()
        let (dx, dh) = (direct.variable(x), direct.variable(h))
        direct.backward(from: loss(body([dx, dh]), direct))
        let (gw, gb) = (w.gradient!, b.gradient!)
        w.zeroGradient(); b.zeroGradient()

        let plans = CheckpointPlans()
        for round in 0..<2 {
            let tape = Tape()
            let (cx, ch) = (tape.variable(x), tape.variable(h))
            let outputs = tape.checkpoint([cx, ch], compilingWith: plans, variant: "three steps", body: body)
            XCTAssertEqual(outputs.map(\.shape), [[2, 3], [2]])
            tape.backward(from: loss(outputs, tape))
            XCTAssertEqual(plans.count, 2, "one forward and one backward plan, traced once (round \(round))")
            assertClose(tape.gradient(of: cx), direct.gradient(of: dx), tolerance: 1e-6, "input x")
            assertClose(tape.gradient(of: ch), direct.gradient(of: dh), tolerance: 1e-6, "input h")
            assertClose(w.gradient!, gw, tolerance: 1e-6, "parameter w")
            assertClose(b.gradient!, gb, tolerance: 1e-6, "parameter b")
            w.zeroGradient(); b.zeroGradient()
        }
    }

    func testFiniteDifferencesThroughNestedCheckpoints() {
        let x = Tensor.randomUniform([2, 3], in: -1...1, seed: 26), h = Tensor.randomUniform([2, 3], in: -1...1, seed: 27)
        checkGradients([x, h], "checkpoint of a checkpoint") { nodes in
            let tape = nodes[0].tape!
            let outer = tape.checkpoint(nodes) { inner in
                let first = inner[0].tape.map { $0.checkpoint(inner, body: self.body) } ?? self.body(inner)
                return [first[0] * first[1].reshaped(to: [2, 1])]
            }
            return outer[0]
        }
        w.zeroGradient(); b.zeroGradient()
    }

    func testParametersGetGradientsWhenNoInputNeedsOne() {
        let tape = Tape()
        let outputs = tape.checkpoint([tape.constant(Tensor.ones([2, 3])), tape.constant(Tensor.zeros([2, 3]))], body: body)
        tape.backward(from: outputs[0].sum())
        XCTAssertNotNil(w.gradient)
        XCTAssertGreaterThan(w.gradient!.scalars.map(Swift.abs).max()!, 0)
        w.zeroGradient(); b.zeroGradient()
    }
}
