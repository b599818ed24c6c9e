import Graph
import TestSupport
import XCTest

/// Finite-difference checks of every op's backward rule.
final class GradientTests: XCTestCase {
    func random(_ shape: [Int], _ seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Tensor {
        Tensor.randomUniform(shape, in: range, seed: seed)
    }

    /// The checker compares element by element: a 20% error on a small entry beside a large one fails, which a
    /// tolerance relative to the largest magnitude (2% of 100 here) let through.
    func testTheCheckerCatchesAWrongSmallEntry() {
        XCTAssertEqual(gradientMismatches(analytic: [100, 0.012], numeric: [100, 0.010], tolerance: 1e-2, absoluteFloor: 1e-3), [1])
        XCTAssertEqual(gradientMismatches(analytic: [100.5, 0.0105], numeric: [100, 0.010], tolerance: 1e-2, absoluteFloor: 1e-3), [])
    }

    func testElementwiseBinaryOps() {
        let a = random([3, 4], 1), b = random([3, 4], 2, in: 0.5...1.5)
        checkGradients([a, b], "add") { $0[0] + $0[1] }
        checkGradients([a, b], "subtract") { $0[0] - $0[1] }
        checkGradients([a, b], "multiply") { $0[0] * $0[1] }
        checkGradients([a, b], "divide") { $0[0] / $0[1] }
    }

    func testBroadcastingSumsBackToInputShape() {
        let a = random([2, 3, 4], 3), row = random([4], 4, in: 0.5...1.5), column = random([2, 3, 1], 5, in: 0.5...1.5)
        let scalar = random([], 6, in: 0.5...1.5)
        checkGradients([a, row], "bias add") { $0[0] + $0[1] }
        checkGradients([a, column], "column multiply") { $0[0] * $0[1] }
        checkGradients([row, a], "row minus tensor") { $0[0] - $0[1] }
        checkGradients([a, scalar], "divide by scalar tensor") { $0[0] / $0[1] }
        checkGradients([random([3, 1], 7), random([1, 4], 8)], "outer broadcast") { $0[0] * $0[1] }
    }

    func testUnaryOps() {
        let x = random([2, 5], 9, in: -2...2)
        let positive = random([2, 5], 10, in: 0.5...2)
        checkGradients([x], "negate") { -$0[0] }
        checkGradients([x], "exp") { exp($0[0]) }
        checkGradients([positive], "log") { log($0[0]) }
        checkGradients([x], "tanh") { tanh($0[0]) }
        checkGradients([x], "sigmoid") { sigmoid($0[0]) }
        checkGradients([x.affine(scale: 1, shift: 0.05)], "relu") { relu($0[0]) }
        checkGradients([x], "square") { square($0[0]) }
        checkGradients([positive], "sqrt") { sqrt($0[0]) }
        checkGradients([x.affine(scale: 1, shift: 0.05)], "abs") { abs($0[0]) }
        checkGradients([x], "affine") { 1 - $0[0] * 3 }
        checkGradients([x], "clamp") { $0[0].clamped(to: -0.77...0.83) }
    }

    func testMatmulInAllTransposeCombinations() {
        let a = random([3, 4], 11), b = random([4, 5], 12)
        checkGradients([a, b], "matmul") { $0[0].matmul($0[1]) }
        checkGradients([a.transposed(), b], "matmul Aᵀ") { $0[0].matmul($0[1], transposingSelf: true) }
        checkGradients([a, b.transposed()], "matmul Bᵀ") { $0[0].matmul($0[1], transposingOther: true) }
        checkGradients([a.transposed(), b.transposed()], "matmul AᵀBᵀ") {
            $0[0].matmul($0[1], transposingSelf: true, transposingOther: true)
        }
        checkGradients([random([2, 3, 4], 13), b], "batched matmul") { matmul($0[0], $0[1]) }
    }

    func testSparseMatmulBothPaths() {
        // 3 of 20 entries nonzero: one or two rows take the sparse loop, six rows the dense GEMM.
        var dense = Tensor.zeros([4, 5])
        dense[0, 1] = 0.5
        dense[2, 0] = -1.5
        dense[3, 4] = 2
        let matrix = SparseMatrix(dense)
        XCTAssertEqual(matrix.nonzeroCount, 3)
        for rows in [1, 2, 6] {
            let x = random([rows, 4], 40 + UInt64(rows))
            assertClose(Node(x).matmul(matrix).value, x.matmul(dense), tolerance: 1e-6, "\(rows) rows")
            checkGradients([x], "sparse matmul, \(rows) rows") { $0[0].matmul(matrix) }
        }
        XCTAssertEqual(SparseMatrix(Tensor([[0, 2], [0.5, 0]])).estimatedSpectralRadius(), 1, accuracy: 1e-3)
    }

    func testShapeOps() {
        let x = random([2, 3, 4], 14)
        checkGradients([x], "reshape") { $0[0].reshaped(to: [6, 4]) * $0[0].reshaped(to: [6, 4]) }
        checkGradients([x], "transpose") { $0[0].transposed(permutation: [1, 2, 0]) }
        checkGradients([x], "slice axis 0") { $0[0].slice(along: 0, 1..<2) }
        checkGradients([x], "slice axis 1") { $0[0].slice(along: 1, 1..<3) }
        checkGradients([x], "slice axis 2") { $0[0].slice(along: 2, 0..<1) + $0[0].slice(along: 2, 3..<4) }
        checkGradients([x, random([2, 2, 4], 15)], "concat axis 1") { concatenate([$0[0], $0[1], $0[0]], along: 1) }
        checkGradients([random([3, 2], 16), random([3, 5], 17)], "concat axis 1 of rank 2") {
            concatenate([$0[0], $0[1]], along: 1)
        }
    }

    func testReductionsAndSoftmax() {
        let x = random([2, 3, 4], 18, in: -2...2)
        checkGradients([x], "sum axis 1") { $0[0].sum(alongAxes: [1]) }
        checkGradients([x], "sum axes 0,2 kept") { $0[0].sum(alongAxes: [0, 2], keepingDimensions: true) }
        checkGradients([x], "mean") { $0[0].mean() }
        checkGradients([x], "logSoftmax last") { $0[0].logSoftmax(alongAxis: 2) }
        checkGradients([x], "logSoftmax middle") { $0[0].logSoftmax(alongAxis: 1) }
        checkGradients([x], "softmax") { $0[0].softmax(alongAxis: 2) }
    }

    func testGatherScatterAddsRepeatedRows() {
        let table = random([5, 3], 19)
        checkGradients([table], "gather") { $0[0].gatheringRows([4, 0, 4, 2]) }
        let tape = Tape()
        let t = tape.variable(table)
        tape.backward(from: t.gatheringRows([1, 1, 3]).sum())
        assertClose(tape.gradient(of: t), shape: [5, 3], [0, 0, 0, 2, 2, 2, 0, 0, 0, 1, 1, 1, 0, 0, 0], "gather counts")
    }

    func testFanOutAccumulates() {
        // y = x * x + tanh(x) * x uses x four times; dy/dx = 2x + tanh'(x) x + tanh(x).
        let x = random([4], 20)
        checkGradients([x], "fan-out") { $0[0] * $0[0] + tanh($0[0]) * $0[0] }
        let tape = Tape()
        let node = tape.variable(Tensor([1, 2, 3]))
        tape.backward(from: (node + node + node).sum())
        assertClose(tape.gradient(of: node), shape: [3], [3, 3, 3], "x + x + x")
    }

    func testStopGradientBlocksFlow() {
        let tape = Tape()
        let x = tape.variable(Tensor([2, 3]))
        tape.backward(from: (x * x.stoppingGradient()).sum())
        assertClose(tape.gradient(of: x), shape: [2], [2, 3], "d(x·stop(x))/dx = stop(x)")
    }

    func testParametersAccumulateAcrossUsesAndPasses() {
        let w = Parameter("w", Tensor([0.5, -1]))
        for _ in 0..<2 {
            let tape = Tape()
            let node = tape.parameter(w)
            XCTAssertEqual(tape.parameter(w).index, node.index, "a parameter is recorded once per tape")
            let x = tape.constant(Tensor([2, 3]))
            tape.backward(from: (node * x + node * x).sum())
        }
        assertClose(w.gradient!, shape: [2], [8, 12], "two uses, two passes")
        w.zeroGradient()
        XCTAssertNil(w.gradient)
    }

    func testLongChainHasNoRecursion() {
        // 5,000 recorded recurrent steps: h = tanh(h * 0.9 + x_t); backward must not overflow the stack.
        let tape = Tape()
        let x = tape.variable(Tensor.randomUniform([5000, 2], in: -0.5...0.5, seed: 21))
        var h = tape.constant(Tensor.zeros([1, 2]))
        for t in 0..<5000 { h = tanh(h * 0.9 + x.slice(along: 0, t..<(t + 1))) }
        tape.backward(from: h.sum())
        let gradient = tape.gradient(of: x)
        XCTAssertEqual(gradient.shape, [5000, 2])
        // The last step's input gradient is 1 - h², the first has vanished through 5,000 tanh'.
        let last = h.value.scalars.map { 1 - $0 * $0 }
        XCTAssertEqual(gradient[4999, 0], last[0], accuracy: 1e-6)
        XCTAssertLessThan(Swift.abs(gradient[0, 0]), 1e-6)
        XCTAssertGreaterThan(tape.count, 20_000)
    }

    func testChainOfRecordedStepsMatchesFiniteDifferences() {
        let x = random([30, 3], 22, in: -0.5...0.5), w = random([3, 3], 23, in: -0.8...0.8)
        checkGradients([x, w], "30-step recurrence") { nodes in
            var h = Node(Tensor.zeros([1, 3]))
            for t in 0..<30 { h = tanh(h.matmul(nodes[1]) + nodes[0].slice(along: 0, t..<(t + 1))) }
            return h
        }
    }
}

extension GradientTests {
    func testClearedTapeIsReusable() {
        let tape = Tape()
        let w = Parameter("w", Tensor([2]))
        for _ in 0..<3 {
            tape.removeAll()
            let x = tape.variable(Tensor([3]))
            tape.backward(from: (x * tape.parameter(w)).sum())
            XCTAssertEqual(tape.gradient(of: x).scalars, [2])
            XCTAssertEqual(tape.count, 4)
        }
        XCTAssertEqual(w.gradient!.scalars, [9], "three passes of dL/dw = 3")
    }
}
