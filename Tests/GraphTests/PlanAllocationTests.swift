import Graph
import XCTest

/// A replay allocates no tensor: values and gradients live in the plan's arena, and the ops recurrent models
/// need besides sweeps and products (per-step bias-gradient sums, the loss's sum and its gradient, the transposes
/// and concatenation of a layer's input and returned sequence, and their gradients) run there too.
final class PlanAllocationTests: XCTestCase {
    func testLSTMReplayAllocatesNothingAfterWarmUp() {
        let w = Parameter("w", Tensor.randomUniform([6, 32], in: -0.3...0.3, seed: 71))
        let u = Parameter("u", Tensor.randomUniform([8, 32], in: -0.3...0.3, seed: 72))
        let b = Parameter("b", Tensor.randomUniform([32], in: -0.3...0.3, seed: 73))
        let tape = Tape()
        // Batch-major [batch, steps, features] in, as a recurrent layer takes it: transposed to time-major.
        let input = tape.variable(Tensor.randomUniform([5, 4, 6], in: -1...1, seed: 80))
        let timeMajor = input.transposed(permutation: [1, 0, 2]).reshaped(to: [20, 6])
        var h = tape.constant(Tensor.zeros([5, 8])), c = tape.constant(Tensor.zeros([5, 8]))
        var outputs: [Node] = []
        for t in 0..<4 {
            let x = timeMajor.slice(along: 0, (5 * t)..<(5 * t + 5))
            let z = matmul(x, tape.parameter(w)) + matmul(h, tape.parameter(u)) + tape.parameter(b)
            let i = sigmoid(z.slice(along: 1, 0..<8)), f = sigmoid(z.slice(along: 1, 8..<16))
            let g = tanh(z.slice(along: 1, 16..<24)), o = sigmoid(z.slice(along: 1, 24..<32))
            c = f * c + i * g
            h = o * tanh(c)
            outputs.append(h)
        }
        // The sequence returned batch-major, as `returnSequences` stacks it.
        let sequence = concatenate(outputs, along: 0).reshaped(to: [4, 5, 8]).transposed(permutation: [1, 0, 2])
        let loss = (sequence * sequence).sum()
        let plan = Plan(tape: tape, inputs: [input], outputs: [], differentiating: loss)
        let batch = [Tensor.randomUniform([5, 4, 6], in: -1...1, seed: 90)]
        func step() {
            for parameter in [w, u, b] { parameter.gradient = nil }
            _ = plan.replay(batch)
        }
        step()
        let before = TensorMemory.allocationCount
        step()
        step()
        XCTAssertEqual(TensorMemory.allocationCount - before, 0, "tensors allocated by two replays after warm-up")
        XCTAssertNotNil(b.gradient, "the replay computed no bias gradient")
    }
}
