import Graph
import TestSupport
import XCTest

/// A one-column forward product (a recurrent layer's projection of one input feature, `x·W + b`) whose step block
/// is next added into by that step's recurrent product from packed panels becomes that product's outer-product
/// addend: one kernel per step instead of two, with eager's bits on every thread count.
final class PlanOuterAddendTests: XCTestCase {
    static let (steps, batch, hidden) = (6, 16, 64)

    /// x [T·B, 1], W [1, H], b [H], h₀ [B, H]; U [H, H] is a parameter (so the plan packs it).
    func inputs(seed: UInt64) -> [Tensor] {
        [[Self.steps * Self.batch, 1], [1, Self.hidden], [Self.hidden], [Self.batch, Self.hidden]]
            .enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: seed + UInt64($0)) }
    }

    let u = Parameter("u", Tensor.randomUniform([hidden, hidden], in: -0.3...0.3, seed: 99))

    /// The recurrence's final state and its loss, recorded on `tape`.
    func record(_ tape: Tape, _ values: [Tensor]) -> (nodes: [Node], output: Node, loss: Node) {
        let n = values.map { tape.variable($0) }
        let projection = n[0].matmul(n[1]) + n[2]
        let u = tape.parameter(self.u)
        var h = n[3]
        for t in 0..<Self.steps {
            h = tanh(projection.slice(along: 0, (t * Self.batch)..<((t + 1) * Self.batch)) + h.matmul(u))
        }
        return (n, h, (h * h).sum())
    }

    func testEachStepsProjectionIsFormedAsItsRecurrentProductStoresItsTiles() {
        let tape = Tape()
        let (nodes, output, loss) = record(tape, inputs(seed: 7))
        let plan = Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: loss, gradients: nodes)
        let projection = nodes[3].index + 1  // x·W
        let projecting = plan.kernels.filter { !$0.isBackward && $0.nodes.contains(projection) }
        let (b, h) = (Self.batch, Self.hidden)
        // The first step's product takes U as it lies (packing starts at its second use): its block runs on its own.
        // From then on each step's block is part of that step's recurrent product.
        XCTAssertEqual(projecting.map(\.flops), [2 * b * h] + Array(repeating: 2 * b * h + 2 * b * h * h, count: Self.steps - 1),
                       plan.summary)
        // Eager's bits, forward and every gradient, on every thread count.
        let values = inputs(seed: 17)
        let eager = Tape()
        let (eagerNodes, eagerOutput, eagerLoss) = record(eager, values)
        u.gradient = nil
        eager.backward(from: eagerLoss)
        let expected = [eagerOutput.value] + eagerNodes.map { eager.gradient(of: $0) } + [u.gradient!]
        for threads in [1, 2, 3] {
            GEMMThreads.withCount(threads) {
                let tape = Tape()
                let (nodes, output, loss) = record(tape, inputs(seed: 7))
                let plan = Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: loss, gradients: nodes)
                u.gradient = nil
                let replayed = plan.replay(values) + [u.gradient!]
                XCTAssertEqual(replayed.count, expected.count)
                for (k, (got, want)) in zip(replayed, expected).enumerated() {
                    assertSameBits(got.scalars, want.scalars, "\(threads) threads, output \(k)")
                }
            }
        }
    }
}
