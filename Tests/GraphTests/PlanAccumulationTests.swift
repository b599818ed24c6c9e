import Graph
import Kernels
import TestSupport
import XCTest

/// Products added into their addend: `a + x·W` runs as one GEMM with beta = 1 into `a`'s place when the
/// product is read by the addition alone and `a` dies there. Which additions are rewritten, and that the
/// rewritten plans give eager's bits.
extension PlanFusionPropertyTests {
    /// The accumulating products of the fused plan of `body` (differentiated through the sum of its squares).
    /// The plan of `body` over `inputs` with a squared loss, returning every input's gradient.
    private func trainingPlan(_ inputs: [Tensor], _ body: ([Node]) -> Node) -> Plan {
        let tape = Tape()
        let nodes = inputs.map { tape.variable($0) }
        let output = body(nodes)
        return Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: (output * output).sum(), gradients: nodes)
    }

    private func accumulatingKernels(_ inputs: [Tensor], _ body: ([Node]) -> Node) -> [PlanKernel] {
        trainingPlan(inputs, body).kernels.filter { $0.kind == .accumulatingMatmul }
    }

    private func random(_ shapes: [[Int]], seed: UInt64) -> [Tensor] {
        shapes.enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: seed + UInt64($0)) }
    }

    /// x [T·B, F], W [F, H], b [H], U [H, H], h₀ [B, H] with T = 4, B = 3, F = 5, H = 6.
    private var recurrentShapes: [[Int]] { [[12, 5], [5, 6], [6], [6, 6], [3, 6]] }

    func testRecurrentStepAccumulatesIntoItsRowsOfTheProjection() {
        // The hoisted projection's rows of step t are the addend (a contiguous slice), both operand orders.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4]
            for t in 0..<4 {
                let rows = projection.slice(along: 0, (3 * t)..<(3 * t + 3)), product = h.matmul(n[3])
                h = tanh(t % 2 == 0 ? rows + product : product + rows)
            }
            return h
        }
        let inputs = random(recurrentShapes, seed: 1), other = random(recurrentShapes, seed: 11)
        checkReplay("recurrence", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        let kernels = accumulatingKernels(inputs, body)
        XCTAssertEqual(kernels.count, 5, "one accumulating product per step, and the projection onto its bias")
        XCTAssertTrue(kernels.allSatisfy { $0.addend != nil && $0.nodes.count == 2 && !$0.isBackward })
    }

    func testColumnSlicesOfTheProjectionAreAddendsInPlace() {
        // A minimal gated unit: each step adds its products into two column slices of its rows of the hoisted
        // projection (gate columns), written there in place with the projection's row stride.
        let shapes = [[12, 5], [5, 12], [12], [6, 6], [3, 6], [6, 6]]
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4]
            for t in 0..<4 {
                let rows = projection.slice(along: 0, (3 * t)..<(3 * t + 3))
                let f = sigmoid(rows.slice(along: 1, 0..<6) + h.matmul(n[3]))
                let candidate = tanh(rows.slice(along: 1, 6..<12) + (f * h).matmul(n[5]))
                h = (1 - f) * h + f * candidate
            }
            return h
        }
        let inputs = random(shapes, seed: 81), other = random(shapes, seed: 91)
        checkReplay("column slices", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        XCTAssertEqual(accumulatingKernels(inputs, body).count, 9, "two accumulating products per step, and the bias")
    }

    func testWideProductsAccumulateExactly() {
        // char-lstm's sizes (K = 256, one pass; 32 rows, 1024 columns): the blocked GEMM, unpacked at the first
        // use of U and prepacked at the second (as eager packs it), both accumulating bit for bit as eager adds.
        let shapes = [[64, 8], [8, 1024], [1024], [256, 1024], [32, 256]]
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            let first = tanh(projection.slice(along: 0, 0..<32) + n[4].matmul(n[3]))
            let second = sigmoid(n[4].matmul(n[3]) + projection.slice(along: 0, 32..<64))
            return first * second
        }
        let inputs = random(shapes, seed: 61), other = random(shapes, seed: 71)
        // Forward bit for bit; backward products split by rows (row-parallel segments) take other GEMM paths than
        // eager's whole ones, fused or not.
        checkReplay("wide", inputs, other: other, tolerance: 1e-6, unfusedTolerance: 1e-6, body)
        let tape = Tape()
        let nodes = inputs.map { tape.variable($0) }
        let plan = Plan(tape: tape, inputs: nodes, outputs: [body(nodes)])
        let eager = Tape()
        assertClose(plan.replay(other)[0], body(other.map { eager.variable($0) }).value, tolerance: 0, "wide forward")
        // K = 8: the projection is computed where each step's rows are read (Plan+ProductsWhereRead.swift).
        XCTAssertEqual(accumulatingKernels(inputs, body).count, 4, "the projection's rows of each step, and both steps")
    }

    func testPackedRecurrentKernelAccumulatesExactly() {
        // A parameter used at every step is packed from its second use on, by eager tapes and plans alike: the
        // prepacked GEMM accumulates with the same bits too (values and the parameters' gradients).
        let u = Parameter("u", Tensor.randomUniform([128, 512], in: -0.2...0.2, seed: 81))
        let w = Parameter("w", Tensor.randomUniform([4, 512], in: -1...1, seed: 82))
        func run(_ tape: Tape, _ x: Node) -> Node {
            let projection = x.matmul(tape.parameter(w))
            var h: Node = tape.constant(Tensor.zeros([16, 128]))
            var cell = h
            for t in 0..<3 {
                let gates = projection.slice(along: 0, (16 * t)..<(16 * t + 16)) + h.matmul(tape.parameter(u))
                cell = sigmoid(gates.slice(along: 1, 0..<128)) * cell + tanh(gates.slice(along: 1, 128..<256))
                h = sigmoid(gates.slice(along: 1, 256..<384)) * tanh(cell)
            }
            return (h * h).sum()
        }
        let x = Tensor.randomUniform([48, 4], in: -1...1, seed: 83)
        let tape = Tape()
        let input = tape.constant(x)
        let loss = run(tape, input)
        let plan = Plan(tape: tape, inputs: [input], outputs: [loss], differentiating: loss)
        // Steps 1 and 2 (step 0's h₀ is a zero constant: its product adds nothing and is not run).
        XCTAssertEqual(plan.kernels.filter { $0.kind == .accumulatingMatmul }.count, 2)
        for parameter in [u, w] { parameter.gradient = nil }
        let replayed = plan.replay([x])[0]
        let planGradients = [u.gradient!, w.gradient!]
        for parameter in [u, w] { parameter.gradient = nil }
        let eager = Tape()
        let eagerLoss = run(eager, eager.constant(x))
        eager.backward(from: eagerLoss)
        assertClose(replayed, eagerLoss.value, tolerance: 0, "loss")
        assertClose(planGradients[0], u.gradient!, tolerance: 0, "u's gradient")
        assertClose(planGradients[1], w.gradient!, tolerance: 0, "w's gradient")
    }

    func testProductAccumulatesOntoItsBiasRow() {
        // A GRU's `h·U + b'` (reset after) and the projection `x·W + b`: the GEMM starts the sum from the bias row,
        // with no copy of the row over the sum's rows before it.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4]
            for t in 0..<2 {
                let recurrent = h.matmul(n[3]) + n[2]
                h = tanh(projection.slice(along: 0, (3 * t)..<(3 * t + 3)) + sigmoid(h) * recurrent)
            }
            return h
        }
        let inputs = random(recurrentShapes, seed: 91), other = random(recurrentShapes, seed: 92)
        checkReplay("bias row", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        let kernels = trainingPlan(inputs, body).kernels
        let accumulating = kernels.filter { $0.kind == .accumulatingMatmul }
        XCTAssertEqual(accumulating.count, 3, "the projection and each step's recurrent product")
        XCTAssertEqual(accumulating.map { $0.addend }, [2, 2, 2], "each starts from the bias row")
        XCTAssertEqual(kernels.filter { $0.kind == .copy && !$0.isBackward }.count, 1, "forward copies besides the loss's sum")
    }

    func testProjectionGradientIsStoredRegionByRegion() {
        // Every step's region of d(x·W + b) is stored by its sweep: nothing zeroes the whole gradient first.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4]
            for t in 0..<4 { h = tanh(projection.slice(along: 0, (3 * t)..<(3 * t + 3)) + h.matmul(n[3])) }
            return h
        }
        let inputs = random(recurrentShapes, seed: 101), other = random(recurrentShapes, seed: 102)
        checkReplay("stored regions", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        let plan = trainingPlan(inputs, body)
        XCTAssertFalse(plan.kernels.contains { $0.kind == .fill }, plan.summary)
    }

    func testRegionsAddedIntoOrNeverWrittenAreZeroed() {
        // Step 0's rows feed a product (its gradient is added by a GEMM), step 1's rows a sweep (stored), step 2's
        // rows nothing that needs a gradient, step 3's rows a sweep again: the first and third regions are zeroed.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            let first = projection.slice(along: 0, 0..<3).matmul(n[3])
            let second = tanh(projection.slice(along: 0, 3..<6) + first)
            let unused = projection.slice(along: 0, 6..<9).stoppingGradient()
            return sigmoid(projection.slice(along: 0, 9..<12) + second) * unused
        }
        let inputs = random(recurrentShapes, seed: 103), other = random(recurrentShapes, seed: 104)
        checkReplay("mixed regions", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        let plan = trainingPlan(inputs, body)
        XCTAssertEqual(plan.kernels.filter { $0.kind == .fill }.count, 2, plan.summary)
    }

    func testProductAccumulatesIntoAnotherProduct() {
        // A minimal gated unit's f = σ(x·W + h·U): the first product's buffer is the addend.
        let body: ([Node]) -> Node = { n in
            let f = sigmoid(n[0].matmul(n[1]) + n[4].matmul(n[3]))
            return f * n[4] + tanh(n[4].matmul(n[3]))
        }
        let shapes = [[3, 5], [5, 6], [6], [6, 6], [3, 6]]
        let inputs = random(shapes, seed: 3), other = random(shapes, seed: 13)
        checkReplay("two products", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        XCTAssertEqual(accumulatingKernels(inputs, body).count, 1)
    }

    func testAddendReadLaterIsNotOverwritten() {
        let shapes = [[3, 5], [5, 6], [6], [6, 6], [3, 6]]
        let inputs = random(shapes, seed: 5), other = random(shapes, seed: 15)
        let dies: ([Node]) -> Node = { n in tanh(n[0].matmul(n[1]) + n[4].matmul(n[3])) }
        let readLater: ([Node]) -> Node = { n in
            let addend = n[0].matmul(n[1])
            return tanh(addend + n[4].matmul(n[3])) * addend
        }
        XCTAssertEqual(accumulatingKernels(inputs, dies).count, 1)
        XCTAssertEqual(accumulatingKernels(inputs, readLater).count, 0, "the addend is read after the addition")
        checkReplay("addend read later", inputs, other: other, tolerance: 0, unfusedTolerance: 0, readLater)
    }

    func testProductsOfAZeroConstantAreNotRun() {
        // A zero initial state: its product is +0 everywhere, so adding it is skipped and storing it is a fill. A
        // constant that is not all zeros, and a fed input (zero this time), still run their products.
        let body: ([Node]) -> Node = { n in
            let tape = n[0].tape!
            let zero = tape.constant(Tensor.zeros([3, 6])), one = tape.constant(Tensor(shape: [3, 6], repeating: 1))
            let projection = n[0].matmul(n[1]) + n[2]
            var h = zero
            for t in 0..<4 { h = tanh(projection.slice(along: 0, (3 * t)..<(3 * t + 3)) + h.matmul(n[3])) }
            return h + zero.matmul(n[3]) * one.matmul(n[3]) + n[4].matmul(n[3])
        }
        let inputs = random(recurrentShapes, seed: 41), other = random(recurrentShapes, seed: 51)
        let plan = trainingPlan(inputs, body)
        XCTAssertEqual(plan.kernels.filter { $0.kind == .accumulatingMatmul && $0.addend != nil && $0.flops == 2 * 3 * 6 * 6 }.count,
                       4, "steps 1 to 3, and the fed h's product added last: \(plan.summary)")
        XCTAssertEqual(plan.kernels.filter { $0.kind == .fill && !$0.isBackward }.count, 1, "0·U: \(plan.summary)")
        XCTAssertEqual(plan.kernels.filter { $0.kind == .matmul && !$0.isBackward }.count, 1, "1·U: \(plan.summary)")
        checkReplay("zero state", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        let fedZero = inputs.enumerated().map { $0.offset == 4 ? Tensor.zeros([3, 6]) : $0.element }
        checkReplay("fed zeros", fedZero, other: other, tolerance: 0, unfusedTolerance: 0, body)
    }

    func testProductReadTwiceIsNotAccumulated() {
        let shapes = [[3, 5], [5, 6], [6], [6, 6], [3, 6]]
        let inputs = random(shapes, seed: 7), other = random(shapes, seed: 17)
        let body: ([Node]) -> Node = { n in
            let product = n[4].matmul(n[3])
            return tanh(n[0].matmul(n[1]) + product) * product
        }
        XCTAssertEqual(accumulatingKernels(inputs, body).count, 0, "the product has a second reader")
        checkReplay("product read twice", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
    }

    func testOverlappingRowsAreNotOverwritten() {
        // Step 0's rows are read again by another slice overlapping them: only step 1's rows can be the addend.
        let body: ([Node]) -> Node = { n in
            let projection = n[0].matmul(n[1]) + n[2]
            let first = tanh(projection.slice(along: 0, 0..<3) + n[4].matmul(n[3]))
            let second = tanh(projection.slice(along: 0, 6..<9) + first.matmul(n[3]))
            return second + sigmoid(projection.slice(along: 0, 2..<5))
        }
        let inputs = random(recurrentShapes, seed: 9), other = random(recurrentShapes, seed: 19)
        checkReplay("overlap", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
        XCTAssertEqual(accumulatingKernels(inputs, body).count, 2, "the projection onto its bias, and step 1")
    }

    func testDeepProductIsNotAccumulated() {
        // K beyond one pass of the GEMM: accumulating would round the addend between the passes.
        let deep = unroll_sgemm_max_single_pass_k() + 44
        let shapes = [[12, 5], [5, 6], [6], [deep, 6], [3, deep]]
        let inputs = random(shapes, seed: 21), other = random(shapes, seed: 31)
        let body: ([Node]) -> Node = { n in tanh((n[0].matmul(n[1]) + n[2]).slice(along: 0, 3..<6) + n[4].matmul(n[3])) }
        // Only the projection `x·W + b` accumulates (onto its bias row).
        XCTAssertEqual(accumulatingKernels(inputs, body).map(\.flops), [2 * 12 * 6 * 5])
        checkReplay("deep product", inputs, other: other, tolerance: 0, unfusedTolerance: 0, body)
    }

    func testRandomGraphsWithProductsAccumulateExactly() {
        let shapes = [[4, 6], [6, 6], [4, 6], [6]]
        let inputs = random(shapes, seed: 41), other = random(shapes, seed: 51)
        var accumulated = 0
        for seed in UInt64(1)...60 {
            let body: ([Node]) -> Node = { n in
                var generator = SeededGenerator(seed: seed)
                var pool = [n[0], n[2], n[0].matmul(n[1])]
                func pick() -> Node { pool[generator.nextIndex(below: pool.count)] }
                for _ in 0..<8 {
                    let a = pick(), b = pick()
                    switch generator.nextIndex(below: 7) {
                    case 0: pool.append(a + b.matmul(n[1]))
                    case 1: pool.append(b.matmul(n[1]) + a)
                    case 2: pool.append(tanh(a + b.matmul(n[1])) * b)
                    case 3: pool.append(sigmoid(a) * b)
                    case 4: pool.append(a + n[3])
                    case 5: pool.append(a - b)
                    default: pool.append(b.matmul(n[1], transposingOther: true) + a.matmul(n[1]))
                    }
                }
                return pool.last! + pool[pool.count - 2]
            }
            checkReplay("graph \(seed)", inputs, other: other, tolerance: 1e-6, unfusedTolerance: 0, body)
            accumulated += accumulatingKernels(inputs, body).count
        }
        XCTAssertGreaterThan(accumulated, 30, "too few additions accumulated into their addend")
    }
}
