import Graph
import TestSupport
import XCTest

/// A parameter's gradient is written into the tensor the replay hands over (no copy at the end), reused from one
/// replay to the next when nothing else holds it, and never written while a caller still holds it.
final class PlanParameterGradientTests: XCTestCase {
    func makePlan() -> (Plan, Parameter, Parameter, [Tensor]) {
        let w = Parameter("w", Tensor.randomUniform([6, 5], in: -1...1, seed: 1))
        let b = Parameter("b", Tensor.randomUniform([5], in: -1...1, seed: 2))
        let tape = Tape()
        let x = tape.variable(Tensor.randomUniform([4, 6], in: -1...1, seed: 3))
        let loss = square(tanh(x.matmul(tape.parameter(w)) + tape.parameter(b))).sum()
        let plan = Plan(tape: tape, inputs: [x], outputs: [loss], differentiating: loss)
        return (plan, w, b, [Tensor.randomUniform([4, 6], in: -1...1, seed: 4)])
    }

    func testGradientTensorIsReusedWhenReleased() {
        let (plan, w, b, inputs) = makePlan()
        _ = plan.replay(inputs)
        let first = Tensor(shape: [6, 5], scalars: w.gradient!.scalars)  // a copy: holding w.gradient would keep it
        let address = w.gradient!.withUnsafeBufferPointer { $0.baseAddress }
        XCTAssertTrue(plan.buffers.contains { $0.isGradient && $0.arenaOffset == nil && $0.count == 30 },
                      "w's gradient lives outside the arena: \(plan.summary)")
        for parameter in [w, b] { parameter.gradient = nil }
        _ = plan.replay(inputs)
        XCTAssertEqual(w.gradient!.withUnsafeBufferPointer { $0.baseAddress }, address, "the same tensor, rewritten")
        assertClose(w.gradient!, first, tolerance: 0, "same inputs, same gradient")
        // Eager's gradient.
        let tape = Tape()
        let x = tape.variable(inputs[0])
        let loss = square(tanh(x.matmul(tape.parameter(w)) + tape.parameter(b))).sum()
        for parameter in [w, b] { parameter.gradient = nil }
        tape.backward(from: loss)
        assertClose(first, w.gradient!, tolerance: 1e-6, "eager")
    }

    func testHeldGradientIsNotOverwrittenAndReplaysAccumulate() {
        let (plan, w, _, inputs) = makePlan()
        _ = plan.replay(inputs)
        let held = w.gradient!
        let single = held.scalars
        _ = plan.replay(inputs)  // w.gradient is still set: the second gradient is added to it
        XCTAssertEqual(held.scalars, single, "a tensor a caller holds is never written by a later replay")
        assertClose(w.gradient!, Tensor(shape: held.shape, scalars: single.map { 2 * $0 }), tolerance: 0, "two replays' sum")
    }
}
