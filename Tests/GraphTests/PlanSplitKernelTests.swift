import Graph
import TestSupport
import XCTest

/// Fills, row copies and sums over rows that run outside a row-parallel segment are split over the cores when
/// large, with every element computed as on one thread: the same bits for every thread count, and eager's values.
final class PlanSplitKernelTests: XCTestCase {
    static let rows = 2048, width = 128

    /// A bias added to many rows (its gradient a sum over rows), a sum over rows (its gradient one row spread over
    /// all), and two slices whose gradients are added into a zeroed gradient of their source.
    func record(_ x: Tensor, bias: Parameter) -> (Tape, Node, Node) {
        let tape = Tape()
        let input = tape.variable(x)
        let z = tanh(input + tape.parameter(bias))
        let columns = z.sum(alongAxes: [0])
        let left = z.slice(along: 1, 0..<(Self.width / 2)).sum(alongAxes: [0])
        let right = z.slice(along: 1, (Self.width / 2)..<Self.width).sum(alongAxes: [0])
        let loss = (columns * columns).sum() + (left * right).sum()
        return (tape, input, loss)
    }

    func replay(threads: Int) -> (bits: [[UInt32]], profile: PlanProfile, plan: Plan) {
        GEMMThreads.withCount(threads) {
            let bias = Parameter("bias", Tensor.randomUniform([Self.width], in: -0.5...0.5, seed: 3))
            let (tape, input, loss) = record(Tensor.randomUniform([Self.rows, Self.width], in: -1...1, seed: 4), bias: bias)
            let plan = Plan(tape: tape, inputs: [input], outputs: [loss], differentiating: loss, gradients: [input])
            plan.isProfiling = true
            bias.gradient = nil
            let values = plan.replay([Tensor.randomUniform([Self.rows, Self.width], in: -1...1, seed: 5)])
            return ((values + [bias.gradient!]).map { $0.scalars.map(\.bitPattern) }, plan.profile!, plan)
        }
    }

    func testLargeFillsCopiesAndRowSumsUseBothCoresWithTheSameBits() {
        let (one, oneProfile, _) = replay(threads: 1)
        let (two, twoProfile, plan) = replay(threads: 2)
        XCTAssertEqual(one, two, "splitting changed bits")
        XCTAssertFalse(oneProfile.kernels.contains(where: \.usedBothCores))
        let alone = twoProfile.kernels.filter { $0.kernel.segment == nil }
        // The bias gradient, a sum over all rows, cannot run in a segment: it is split by columns.
        let biasGradient = alone.filter { $0.kernel.kind == .copy && $0.kernel.isBackward && $0.kernel.nodes == [2, 3] }
        XCTAssertEqual(biasGradient.count, 1, plan.summary)
        XCTAssertTrue(biasGradient.allSatisfy(\.usedBothCores), "the bias gradient ran on one core:\n\(plan.summary)")

        let bias = Parameter("bias", Tensor.randomUniform([Self.width], in: -0.5...0.5, seed: 3))
        let x = Tensor.randomUniform([Self.rows, Self.width], in: -1...1, seed: 5)
        let (tape, input, loss) = record(x, bias: bias)
        tape.backward(from: loss)
        let eager = [loss.value, tape.gradient(of: input), bias.gradient!]
        for (k, (bits, expected)) in zip(two, eager).enumerated() {
            assertClose(Tensor(shape: expected.shape, scalars: bits.map(Float.init(bitPattern:))), expected, tolerance: 1e-6, "output \(k)")
        }
    }
}
