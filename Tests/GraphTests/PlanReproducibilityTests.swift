import Graph
import XCTest

/// A replayed plan gives the same bits on every run and for every thread count: the GEMM and the element-wise
/// sweeps split their work so that no element's value depends on the split.
final class PlanReproducibilityTests: XCTestCase {
    /// Traces three steps of a gated recurrence large enough that products and sweeps use every thread, compiles
    /// it, and returns the bits of two replays' outputs and parameter gradients.
    func replayBits(threads: Int) -> [[UInt32]] {
        GEMMThreads.withCount(threads) {
            let w = Parameter("w", Tensor.randomUniform([96, 1024], in: -0.2...0.2, seed: 31))
            let u = Parameter("u", Tensor.randomUniform([256, 1024], in: -0.2...0.2, seed: 32))
            let b = Parameter("b", Tensor.randomUniform([1024], in: -0.5...0.5, seed: 33))
            let tape = Tape()
            let xs = (0..<3).map { tape.variable(Tensor.randomUniform([64, 96], in: -1...1, seed: 40 + UInt64($0))) }
            var h = tape.constant(Tensor.zeros([64, 256])), c = tape.constant(Tensor.zeros([64, 256]))
            for x in xs {
                let z = matmul(x, tape.parameter(w)) + matmul(h, tape.parameter(u)) + tape.parameter(b)
                let i = sigmoid(z.slice(along: 1, 0..<256)), f = sigmoid(z.slice(along: 1, 256..<512))
                let g = tanh(z.slice(along: 1, 512..<768)), o = sigmoid(z.slice(along: 1, 768..<1024))
                c = f * c + i * g
                h = o * tanh(c)
            }
            let loss = (h * h).sum()
            let plan = Plan(tape: tape, inputs: xs, outputs: [h, loss], differentiating: loss)
            var bits: [[UInt32]] = []
            for seed in [50, 60] as [UInt64] {
                for parameter in [w, u, b] { parameter.gradient = nil }
                let values = plan.replay((0..<3).map { Tensor.randomUniform([64, 96], in: -1...1, seed: seed + UInt64($0)) })
                for tensor in values + [w, u, b].map({ $0.gradient! }) { bits.append(tensor.scalars.map(\.bitPattern)) }
            }
            return bits
        }
    }

    func testReplayIsBitwiseTheSameForEveryThreadCount() {
        let one = replayBits(threads: 1)
        XCTAssertEqual(one, replayBits(threads: 1), "two builds and replays on one thread differ")
        for threads in [2, 7] {
            let other = replayBits(threads: threads)
            XCTAssertEqual(other.count, one.count)
            for (k, (a, b)) in zip(one, other).enumerated() {
                let differing = zip(a, b).filter { $0 != $1 }.count
                XCTAssertEqual(differing, 0, "tensor \(k): \(differing) of \(a.count) values differ between 1 and \(threads) threads")
            }
        }
    }
}
