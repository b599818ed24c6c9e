import Graph
import TestSupport
import XCTest

/// Independent kernels outside segments (a recurrence's weight gradients) are scheduled side by side and run at
/// once, one per core: eager's values, the same bits for every thread count, and no shared arena bytes.
final class PlanConcurrentKernelsTests: XCTestCase {
    static let hidden = 64, features = 5, batch = 16, steps = 8

    func makeParameters() -> [Parameter] {
        let n = Self.hidden
        return [[Self.features, 2 * n], [n, n], [n, n], [2 * n]].enumerated().map { k, shape in
            Parameter("p\(k)", Tensor.randomUniform(shape, in: -0.3...0.3, seed: 110 + UInt64(k)))
        }
    }

    func inputs(_ seed: UInt64) -> [Tensor] {
        (0..<Self.steps).map { Tensor.randomUniform([Self.batch, Self.features], in: -1...1, seed: seed + UInt64($0)) }
    }

    /// A minimal gated unit: its two recurrent weights' gradients are independent products over all steps.
    func record(_ parameters: [Parameter], _ values: [Tensor]) -> (Tape, [Node], Node, Node) {
        let tape = Tape()
        let xs = values.map { tape.variable($0) }
        let h = recordMinimalGatedUnit(inputs: xs, parameters: parameters.map { tape.parameter($0) }, batch: Self.batch,
                                       hidden: Self.hidden)
        return (tape, xs, h, (h * h).sum())
    }

    func replay(threads: Int) -> (bits: [[UInt32]], plan: Plan) {
        GEMMThreads.withCount(threads) {
            let parameters = makeParameters()
            let (tape, xs, h, loss) = record(parameters, inputs(10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [h, loss], differentiating: loss)
            plan.isProfiling = true
            for parameter in parameters { parameter.gradient = nil }
            let values = plan.replay(inputs(20))
            return ((values + parameters.map { $0.gradient! }).map { $0.scalars.map(\.bitPattern) }, plan)
        }
    }

    func testRecurrentWeightGradientsRunAtOnceWithEagerValuesAndTheSameBits() {
        let (one, _) = replay(threads: 1)
        let (two, plan) = replay(threads: 2)
        XCTAssertEqual(one, two, "running kernels at once changed bits")
        let kernels = plan.kernels
        let stacked = kernels.indices.filter { kernels[$0].kind == .stackedMatmul && kernels[$0].flops >= 2 * Self.hidden * Self.hidden * Self.batch * (Self.steps - 1) }
        XCTAssertEqual(stacked.count, 2, plan.summary)
        let groups = plan.concurrentKernelGroups
        XCTAssertTrue(groups.contains { group in stacked.allSatisfy { group.joined().contains($0) } && group.allSatisfy { !$0.isEmpty } },
                      "the recurrent weights' gradients are not in one group:\n\(plan.summary)")
        for (k, group) in groups.enumerated() {
            for index in group.joined() { XCTAssertEqual(kernels[index].concurrentGroup, k) }
        }
        let profile = plan.profile!
        XCTAssertTrue(stacked.allSatisfy { profile.kernels[$0].usedBothCores && profile.kernels[$0].runs == 1 })
        // Each kernel of a group is timed on its thread, inside the group's wall time.
        XCTAssertGreaterThan(profile.concurrentGroupSeconds, 0)
        XCTAssertTrue(stacked.allSatisfy { profile.kernels[$0].seconds <= profile.concurrentGroupSeconds })
        XCTAssertLessThanOrEqual(profile.concurrentGroupSeconds, profile.replaySeconds)

        let parameters = makeParameters()
        let (tape, _, h, loss) = record(parameters, inputs(20))
        tape.backward(from: loss)
        let eager = [h.value, loss.value] + parameters.map { $0.gradient! }
        for (k, (bits, expected)) in zip(two, eager).enumerated() {
            assertClose(Tensor(shape: expected.shape, scalars: bits.map(Float.init(bitPattern:))), expected, tolerance: 1e-6, "output \(k)")
        }
    }

    /// Two kernels of a group run at once: no two buffers alive during a group may share arena bytes.
    func testBuffersTouchedInOneGroupNeverShareArenaBytes() {
        let (_, plan) = replay(threads: 2)
        let arena = plan.buffers.filter { $0.arenaOffset != nil }
        let kernels = plan.kernels
        for k in plan.concurrentKernelGroups.indices {
            let members = kernels.indices.filter { kernels[$0].concurrentGroup == k }
            let span = members.min()!...members.max()!
            let alive = arena.filter { $0.lifetime.overlaps(span) }
            for (i, a) in alive.enumerated() {
                for b in alive[(i + 1)...] {
                    XCTAssertFalse((a.arenaOffset!..<(a.arenaOffset! + a.count)).overlaps(b.arenaOffset!..<(b.arenaOffset! + b.count)),
                                   "buffers of nodes \(a.nodes) and \(b.nodes) share bytes inside group \(k)")
                }
            }
        }
    }
}
