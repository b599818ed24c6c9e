import Graph
import TestSupport
import XCTest

/// Traces `body` on `inputs` (as variables), compiles it fused and unfused, and compares the replays on new
    /// values with eager execution on those values: the output and every input's gradient.
func checkReplay(_ label: String, _ inputs: [Tensor], other: [Tensor], tolerance: Float = 1e-6, unfusedTolerance: Float? = nil,
                 file: StaticString = #filePath, line: UInt = #line, _ body: ([Node]) -> Node) {
        for fusing in [false, true] {
            let tolerance = fusing ? tolerance : unfusedTolerance ?? tolerance
            let tape = Tape()
            let nodes = inputs.map { tape.variable($0) }
            let output = body(nodes)
            let loss = (output * output).sum()
            let plan = Plan(tape: tape, inputs: nodes, outputs: [output, loss], differentiating: loss, gradients: nodes,
                            fusing: fusing)
            for values in [other, inputs] {
                let eager = Tape()
                let eagerNodes = values.map { eager.variable($0) }
                let eagerOutput = body(eagerNodes)
                let eagerLoss = (eagerOutput * eagerOutput).sum()
                eager.backward(from: eagerLoss)
                let replayed = plan.replay(values)
                assertClose(replayed[0], eagerOutput.value, tolerance: tolerance, "\(label) fusing \(fusing) output", file: file, line: line)
                for k in values.indices {
                    assertClose(replayed[2 + k], eager.gradient(of: eagerNodes[k]), tolerance: tolerance,
                                "\(label) fusing \(fusing) gradient \(k)", file: file, line: line)
                }
            }
        }
}

/// A compiled ``Plan`` computes what eager execution computes: values and gradients, fused and unfused.
final class PlanTests: XCTestCase {
    func testGateSlicesFeedingOneSweep() {
        let x = Tensor.randomUniform([3, 8], in: -1...1, seed: 1), c = Tensor.randomUniform([3, 4], in: -1...1, seed: 2)
        let x2 = Tensor.randomUniform([3, 8], in: -1...1, seed: 3), c2 = Tensor.randomUniform([3, 4], in: -1...1, seed: 4)
        checkReplay("gates", [x, c], other: [x2, c2]) { n in
            let i = sigmoid(n[0].slice(along: 1, 0..<4)), g = tanh(n[0].slice(along: 1, 4..<8))
            return i * g + n[1] * i
        }
    }

    func testChainWithBiasRow() {
        let x = Tensor.randomUniform([4, 5], in: -1...1, seed: 5), b = Tensor.randomUniform([5], in: -1...1, seed: 6)
        let x2 = Tensor.randomUniform([4, 5], in: -1...1, seed: 7), b2 = Tensor.randomUniform([5], in: -1...1, seed: 8)
        checkReplay("bias", [x, b], other: [x2, b2]) { n in tanh(n[0] + n[1]) * 2 - sigmoid(n[0]) }
    }

    func testBiasRowUsedTwiceInOneSweepIsExact() {
        // Eager sums each use's gradient over the rows and adds the sums; so must the sweep (not sum the uses first).
        let x = Tensor.randomUniform([16, 8], in: -3...3, seed: 13), b = Tensor.randomUniform([8], in: -3...3, seed: 14)
        let x2 = Tensor.randomUniform([16, 8], in: -3...3, seed: 15), b2 = Tensor.randomUniform([8], in: -3...3, seed: 16)
        checkReplay("bias twice", [x, b], other: [x2, b2], tolerance: 0) { n in
            tanh(n[0] + n[1]) * 3 + sigmoid(n[0] * n[1]) - (n[0] - n[1]) * 0.7
        }
    }

    func testTransposeConcatAndSums() {
        let x = Tensor.randomUniform([2, 3, 4], in: -1...1, seed: 9), y = Tensor.randomUniform([3, 4], in: -1...1, seed: 10)
        let x2 = Tensor.randomUniform([2, 3, 4], in: -1...1, seed: 11), y2 = Tensor.randomUniform([3, 4], in: -1...1, seed: 12)
        checkReplay("moves", [x, y], other: [x2, y2]) { n in
            let timeMajor = n[0].transposed(permutation: [1, 0, 2]).reshaped(to: [6, 4])
            let joined = concatenate([timeMajor, tanh(n[1]), n[1] * 2], along: 0)
            let wide = concatenate([joined, sigmoid(joined)], along: 1)
            return wide.transposed(permutation: [1, 0]) * wide.sum(alongAxes: [1], keepingDimensions: true).transposed(permutation: [1, 0])
                + wide.sum(alongAxes: [0], keepingDimensions: true).reshaped(to: [8, 1])
        }
    }
}

/// Random compositions of element-wise ops (unary, binary with a bias row and scalars, affine, clamp) over
/// inputs and their last-axis slices: fused and unfused plans agree with eager execution, forward and backward.
final class PlanFusionPropertyTests: XCTestCase {
    func randomGraph(_ n: [Node], seed: UInt64) -> Node {
        var generator = SeededGenerator(seed: seed)
        // Values of the two iteration shapes [3, 8] and [3, 4]; [3, 4] ones start as slices of [3, 8].
        var wide: [Node] = [n[0]]
        var narrow: [Node] = [n[1], n[0].slice(along: 1, 0..<4), n[0].slice(along: 1, 4..<8)]
        func pick(_ pool: [Node]) -> Node { pool[generator.nextIndex(below: pool.count)] }
        for _ in 0..<14 {
            let useWide = generator.nextIndex(below: 3) == 0
            let pool = useWide ? wide : narrow
            let a = pick(pool), b = pick(pool)
            let next: Node
            switch generator.nextIndex(below: 12) {
            case 0: next = sigmoid(a)
            case 1: next = tanh(a)
            case 2: next = a * b
            case 3: next = a + b
            case 4: next = a - b
            case 5: next = a / (square(b) + 1)
            case 6: next = 1 - a
            case 7: next = a.clamped(to: -0.5...0.5)
            case 8: next = relu(a) + abs(b)
            case 9: next = exp(a.clamped(to: -2...2)) * 0.5
            case 10: next = useWide ? a + n[2] : a * n[2].slice(along: 0, 0..<4)
            default: next = sqrt(square(a) + 1) - log(square(b) + 2)
            }
            if useWide {
                wide.append(next)
                if generator.nextIndex(below: 2) == 0 { narrow.append(next.slice(along: 1, 2..<6)) }
            } else {
                narrow.append(next)
            }
        }
        return narrow.last! * narrow[narrow.count - 2] + wide.last!.slice(along: 1, 1..<5)
    }

    func testRandomElementwiseGraphsFuseExactly() {
        let inputs = [Tensor.randomUniform([3, 8], in: -1...1, seed: 11), Tensor.randomUniform([3, 4], in: -1...1, seed: 12),
                      Tensor.randomUniform([8], in: -1...1, seed: 13)]
        let other = [Tensor.randomUniform([3, 8], in: -1...1, seed: 21), Tensor.randomUniform([3, 4], in: -1...1, seed: 22),
                     Tensor.randomUniform([8], in: -1...1, seed: 23)]
        var fusedKernels = 0, records = 0
        for seed in UInt64(1)...200 {
            // Graph 5 catches a fused backward that adds what other kernels wrote before its own contributions
            // instead of where eager's running sum adds it (1.6e-6 off after cancellation). One kernel per record
            // adds every contribution where eager does (`a * a`'s two among them): the same bits.
            checkReplay("graph \(seed)", inputs, other: other, unfusedTolerance: 0) { randomGraph($0, seed: seed) }
            let tape = Tape()
            let nodes = inputs.map { tape.variable($0) }
            let output = randomGraph(nodes, seed: seed)
            let plan = Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: output.sum(), gradients: nodes)
            fusedKernels += plan.kernels.filter { $0.kind == .fused }.count
            records += plan.kernels.filter { $0.kind == .fused }.reduce(0) { $0 + $1.nodes.count }
        }
        XCTAssertGreaterThan(records, 2 * fusedKernels, "fusion grouped too little: \(records) records in \(fusedKernels) sweeps")
    }
}

/// Short rows (a hidden size of 16, a row of 5): the interpreter's tiles span several whole rows when every
/// operand allows it (contiguous, a scalar, a bias row, one value per row) and keep to one row otherwise (a
/// strided slice); per element the same operations run, so fused and unfused plans give eager's values. Long
/// rows (600) take several tiles each.
final class PlanShortRowTests: XCTestCase {
    func testShortRowsOfEveryOperandLayout() {
        // (3, 600): rows of several tiles, whose values broadcast along a row (a scalar, one per row) are spread once.
        for (rows, width) in [(13, 16), (37, 5), (9, 100), (4, 130), (1, 16), (3, 600)] {
            let shapes = [[rows, width], [width], [rows, 1], [rows, 2 * width], [rows, width], [1]]
            let inputs = shapes.enumerated().map { Tensor.randomUniform($1, in: -2...2, seed: 100 + UInt64($0)) }
            let other = shapes.enumerated().map { Tensor.randomUniform($1, in: -2...2, seed: 200 + UInt64($0)) }
            checkReplay("[\(rows), \(width)]", inputs, other: other, tolerance: 1e-6, unfusedTolerance: 0) { n in
                let gate = sigmoid(n[3].slice(along: 1, 0..<width)), candidate = tanh(n[3].slice(along: 1, width..<(2 * width)))
                let h = tanh(n[0] + n[1]) * n[2] + gate * candidate
                return h * 0.5 + exp(n[4].clamped(to: -1...1)) * n[2] - square(n[0] - n[1]) * n[5]
            }
        }
    }
}
