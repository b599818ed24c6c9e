import Graph
import XCTest

/// A forward product with a short inner dimension (a recurrent layer's input projection from a few features) is
/// computed a block of rows at a time, right before the first kernel that reads them, into one buffer the blocks
/// take turns in; eager's bits, for every thread count. Products read whole, or too deep to pay, stay whole.
final class PlanProductsWhereReadTests: XCTestCase {
    static let (steps, batch, hidden) = (6, 8, 32)

    /// x [T·B, features], W [features, H], b [H], U [H, H], h₀ [B, H].
    func inputs(features: Int, batch: Int = batch, hidden: Int = hidden, seed: UInt64) -> [Tensor] {
        [[Self.steps * batch, features], [features, hidden], [hidden], [hidden, hidden], [batch, hidden]]
            .enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: seed + UInt64($0)) }
    }

    /// A tanh recurrence over the projection's step rows; `readWhole` also reads the whole projection at the end.
    func recurrence(batch: Int = batch, readWhole: Bool = false) -> ([Node]) -> Node {
        { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4]
            for t in 0..<Self.steps {
                h = tanh(projection.slice(along: 0, (t * batch)..<((t + 1) * batch)) + h.matmul(n[3]))
            }
            return readWhole ? h + projection.slice(along: 0, 0..<batch) * projection.sum() : h
        }
    }

    func plan(_ inputs: [Tensor], _ body: ([Node]) -> Node) -> (Plan, projection: Int) {
        let tape = Tape()
        let nodes = inputs.map { tape.variable($0) }
        let output = body(nodes)
        let projection = nodes[4].index + 2  // x·W is recorded first, then its bias addition
        return (Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: (output * output).sum(), gradients: nodes),
                projection)
    }

    /// The kernels computing rows of the projection (the product and its bias addition), in schedule order.
    func projectionKernels(_ plan: Plan, _ projection: Int) -> [(index: Int, kernel: PlanKernel)] {
        plan.kernels.enumerated().filter { $0.element.kind == .accumulatingMatmul && $0.element.nodes.contains(projection) }
            .map { ($0.offset, $0.element) }
    }

    func testOneFeatureProjectionRunsStepByStepInOneBuffer() {
        let inputs = inputs(features: 1, seed: 3)
        let (plan, projection) = plan(inputs, recurrence())
        let blocks = projectionKernels(plan, projection)
        XCTAssertEqual(blocks.count, Self.steps, plan.summary)
        XCTAssertEqual(blocks.map(\.kernel.flops), Array(repeating: 2 * Self.batch * Self.hidden, count: Self.steps))
        // Each step's block runs right before that step's recurrent product adds into it.
        let recurrent = plan.kernels.enumerated().filter { $0.element.kind == .accumulatingMatmul && !$0.element.nodes.contains(projection) }
        XCTAssertEqual(recurrent.count, Self.steps, plan.summary)
        for (block, step) in zip(blocks, recurrent) { XCTAssertEqual(block.index + 1, step.offset, plan.summary) }
        // One step's rows of arena hold every step's block in turn (not the whole projection).
        let held = plan.buffers.filter { !$0.isGradient && $0.nodes.contains(projection) }
        XCTAssertEqual(held.map(\.count), [Self.batch * Self.hidden], plan.summary)
        checkReplay("one feature", inputs, other: self.inputs(features: 1, seed: 13), tolerance: 0, unfusedTolerance: 0,
                    recurrence())
    }

    func testFewFeaturesKeepEagerBitsOnEveryThreadCount() {
        // K = 8 sums over the features: every block, and each half a segment's part computes, is large enough for
        // the GEMM's blocked path, which the whole product takes too. Smaller blocks would sum in another order.
        let (batch, hidden) = (16, 160)
        let inputs = inputs(features: 8, batch: batch, hidden: hidden, seed: 5)
        let other = self.inputs(features: 8, batch: batch, hidden: hidden, seed: 15)
        let (plan, projection) = plan(inputs, recurrence(batch: batch))
        XCTAssertEqual(projectionKernels(plan, projection).count, Self.steps, plan.summary)
        XCTAssertEqual(Set(plan.kernels.filter { !$0.isBackward }.compactMap(\.segment)).count, 1, "the forward steps run in one segment: \(plan.summary)")
        var bits: [[UInt32]] = []
        for threads in [1, 2, 3] {
            let replayed = GEMMThreads.withCount(threads) { () -> [UInt32] in
                let (plan, _) = self.plan(inputs, recurrence(batch: batch))
                return plan.replay(other).flatMap { $0.scalars.map(\.bitPattern) }
            }
            if let first = bits.first { XCTAssertEqual(replayed, first, "\(threads) threads") }
            bits.append(replayed)
        }
        checkReplay("eight features", inputs, other: other, tolerance: 0, unfusedTolerance: 0, recurrence(batch: batch))
        // Eight rows a block: halves of four rows would leave the blocked path, so the product stays whole.
        let small = self.inputs(features: 8, seed: 25)
        let (whole, wholeProjection) = self.plan(small, recurrence())
        XCTAssertEqual(projectionKernels(whole, wholeProjection).count, 1, whole.summary)
    }

    func testProjectionReadWholeLaterKeepsItsBuffer() {
        // The blocks still run where the steps read them, but a later reader of the whole result keeps it in one buffer.
        let inputs = inputs(features: 1, seed: 7)
        let (plan, projection) = plan(inputs, recurrence(readWhole: true))
        XCTAssertEqual(projectionKernels(plan, projection).count, Self.steps, plan.summary)
        let held = plan.buffers.filter { !$0.isGradient && $0.nodes.contains(projection) }
        XCTAssertEqual(held.map(\.count), [Self.steps * Self.batch * Self.hidden], plan.summary)
        checkReplay("read whole", inputs, other: self.inputs(features: 1, seed: 17), tolerance: 0, unfusedTolerance: 0,
                    recurrence(readWhole: true))
    }

    func testDeepProductStaysWhole() {
        // More features than Plan.maximumDeferredK: one product over every step's rows.
        let inputs = inputs(features: 40, seed: 9)
        let (plan, projection) = plan(inputs, recurrence())
        let blocks = projectionKernels(plan, projection)
        XCTAssertEqual(blocks.map(\.kernel.flops), [2 * Self.steps * Self.batch * Self.hidden * 40], plan.summary)
        checkReplay("deep", inputs, other: self.inputs(features: 40, seed: 19), tolerance: 0, unfusedTolerance: 0,
                    recurrence())
    }

    func testProductReadWholeFirstStaysWhole() {
        // Every row is first read by one kernel: there is nothing to move.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            let scale = sigmoid(projection).sum()
            return tanh(projection.slice(along: 0, 0..<Self.batch) + n[4].matmul(n[3])) * scale
        }
        let inputs = inputs(features: 1, seed: 11)
        let (plan, projection) = plan(inputs, body)
        XCTAssertEqual(projectionKernels(plan, projection).map(\.kernel.flops), [2 * Self.steps * Self.batch * Self.hidden],
                       plan.summary)
        checkReplay("read whole first", inputs, other: self.inputs(features: 1, seed: 21), tolerance: 0, unfusedTolerance: 0,
                    body)
    }
}
