import Graph
import TestSupport
import XCTest

/// A plan's profile: every kernel and segment once, timed over exactly the replays that ran while profiling,
/// the replay's values unchanged, and the cores each kernel ran on as the thread count decides.
final class PlanProfileTests: XCTestCase {
    static let hidden = 24, features = 5, batch = 16, steps = 6

    /// A minimal gated unit over `steps` steps and a squared loss, compiled (it forms row-parallel segments).
    func makePlan() -> (Plan, [Parameter], [Tensor]) {
        let n = Self.hidden
        let shapes = [[Self.features, 2 * n], [n, n], [n, n], [2 * n]]
        let parameters = shapes.enumerated().map { k, shape in
            Parameter("p\(k)", Tensor.randomUniform(shape, in: -0.4...0.4, seed: 90 + UInt64(k)))
        }
        func inputs(_ seed: UInt64) -> [Tensor] {
            (0..<Self.steps).map { Tensor.randomUniform([Self.batch, Self.features], in: -1...1, seed: seed + UInt64($0)) }
        }
        let tape = Tape()
        let xs = inputs(10).map { tape.variable($0) }
        let h = recordMinimalGatedUnit(inputs: xs, parameters: parameters.map { tape.parameter($0) }, batch: Self.batch,
                                       hidden: n)
        let loss = (h * h).sum()
        return (Plan(tape: tape, inputs: xs, outputs: [h, loss], differentiating: loss), parameters, inputs(20))
    }

    func replayBits(_ plan: Plan, _ parameters: [Parameter], _ inputs: [Tensor]) -> [[UInt32]] {
        for parameter in parameters { parameter.gradient = nil }
        let values = plan.replay(inputs)
        return (values + parameters.map { $0.gradient! }).map { $0.scalars.map(\.bitPattern) }
    }

    func testProfileListsEveryKernelAndSegmentOnceWithTheReplaysThatRan() {
        GEMMThreads.withCount(2) {
            let (plan, parameters, inputs) = makePlan()
            XCTAssertFalse(plan.isProfiling)
            XCTAssertNil(plan.profile)
            let unprofiled = replayBits(plan, parameters, inputs)
            plan.isProfiling = true
            for _ in 0..<3 { XCTAssertEqual(replayBits(plan, parameters, inputs), unprofiled, "profiling changed the replay") }
            plan.isProfiling = false
            _ = replayBits(plan, parameters, inputs)

            guard let profile = plan.profile else { return XCTFail("no profile after profiled replays") }
            XCTAssertEqual(profile.replays, 3)
            let kernels = plan.kernels, segments = plan.rowSegments
            XCTAssertFalse(segments.isEmpty, "the MGU plan has no segment to profile")
            XCTAssertEqual(profile.kernels.map(\.kernel), kernels)
            XCTAssertEqual(profile.kernels.map(\.runs), Array(repeating: 3, count: kernels.count))
            XCTAssertTrue(profile.kernels.allSatisfy { $0.seconds >= 0 })
            XCTAssertEqual(profile.segments.map(\.kernels), segments.map(\.kernels))
            XCTAssertEqual(profile.segments.map(\.runs), Array(repeating: 3, count: segments.count))
            XCTAssertGreaterThan(profile.replaySeconds, 0)

            // The kernels outside segments and the segments are timed one after the other inside the replay.
            let outside = profile.kernels.filter { $0.kernel.segment == nil }.reduce(0) { $0 + $1.seconds }
            let inSegments = profile.segments.reduce(0) { $0 + $1.seconds }
            XCTAssertGreaterThan(outside, 0)
            XCTAssertGreaterThan(inSegments, 0)
            XCTAssertLessThanOrEqual(outside + inSegments + profile.packingSeconds, profile.replaySeconds)
            for (k, segment) in profile.segments.enumerated() {
                // A segment kernel's time is the mean of its parts' times, each measured inside the segment's wall time.
                let members = profile.kernels[segment.kernels]
                XCTAssertLessThanOrEqual(members.reduce(0) { $0 + $1.seconds }, segment.seconds, "segment \(k)")
                XCTAssertEqual(members.reduce(0) { $0 + $1.seconds } * Double(segment.parts), segment.partSeconds,
                               accuracy: 1e-9, "segment \(k)")
                // Every part's time is its wait to start, its kernels and its wait at the join: parts × wall time.
                XCTAssertEqual(segment.startDelaySeconds + segment.partSeconds + segment.joinWaitSeconds,
                               Double(segment.parts) * segment.seconds, accuracy: 1e-6, "segment \(k)")
                XCTAssertGreaterThanOrEqual(segment.startDelaySeconds, 0)
                XCTAssertGreaterThanOrEqual(segment.joinWaitSeconds, 0)
                XCTAssertTrue(segment.usedBothCores, "segment \(k) did not fork with two threads")
                XCTAssertTrue(members.allSatisfy(\.usedBothCores), "segment \(k)")
            }
            // The recurrent products are too small to fork outside a segment: those kernels ran on one core.
            XCTAssertTrue(profile.kernels.contains { $0.kernel.segment == nil && !$0.usedBothCores })
            XCTAssertGreaterThan(profile.singleCoreSecondsPerReplay, 0)

            let report = profile.report(stepSeconds: 2 * profile.secondsPerReplay, limit: 1000)
            XCTAssertTrue(report.hasPrefix("plan profile over 3 replays"), report)
            XCTAssertTrue(report.contains("outside the plan"), report)
            // Every kernel is counted in exactly one line of the report (`×N`).
            let counts = report.split(separator: "\n").compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("×") }.flatMap { Int($0.dropFirst()) }
            }
            XCTAssertEqual(counts.reduce(0, +), kernels.count, report)
        }
    }

    func testOneThreadRunsEveryKernelOnOneCore() {
        GEMMThreads.withCount(1) {
            let (plan, parameters, inputs) = makePlan()
            plan.isProfiling = true
            _ = replayBits(plan, parameters, inputs)
            guard let profile = plan.profile else { return XCTFail("no profile") }
            XCTAssertEqual(profile.replays, 1)
            XCTAssertFalse(profile.kernels.contains(where: \.usedBothCores))
            XCTAssertFalse(profile.segments.contains(where: \.usedBothCores))
            // Turning profiling on again starts a new profile.
            plan.isProfiling = false
            plan.isProfiling = true
            XCTAssertEqual(plan.profile?.replays, 0)
        }
    }
}
