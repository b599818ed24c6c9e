import Graph
import TestSupport
import XCTest

/// Where backward writes a recurrence's gradients: a time step's `xWₜ + h·U` takes its gradient where its rows of
/// the hoisted projection's gradient lie (no per-step copy sweep), and the recurrent weight's `Σₜ hₜ₋₁ᵀ·dzₜ` reads
/// those rows in place (no stack of the dzₜ); compiled replays still compute what eager backward computes.
final class PlanGradientPlacementTests: XCTestCase {
    /// A cell written from nodes on its rows `rows` of the hoisted projection `x·W + b`: `(rows, h, U) -> h'`.
    struct Cell: Sendable {
        var name: String
        var gates: Int
        var step: @Sendable (Node, Node, Node) -> Node
    }

    static let hidden = 24, features = 5, batch = 16, steps = 6

    static let cells: [Cell] = [
        // An LSTM's step, its cell state carried next to h (the gates read z = xWₜ + h·U, [B, 4H], in place).
        Cell(name: "lstm", gates: 4) { rows, state, u in
            let h = state.slice(along: 1, 0..<hidden), c = state.slice(along: 1, hidden..<(2 * hidden))
            let z = rows + matmul(h, u)
            let i = sigmoid(z.slice(along: 1, 0..<hidden)), f = sigmoid(z.slice(along: 1, hidden..<(2 * hidden)))
            let g = tanh(z.slice(along: 1, (2 * hidden)..<(3 * hidden))), o = sigmoid(z.slice(along: 1, (3 * hidden)..<(4 * hidden)))
            let c2 = f * c + i * g
            return concatenate([o * tanh(c2), c2], along: 1)
        },
        // A custom two-gate cell, the product added on the other side: z = h·U + xWₜ, h' = f⊙h + (1 − f)⊙tanh(·).
        Cell(name: "custom", gates: 2) { rows, h, u in
            let z = matmul(h, u) + rows
            let f = sigmoid(z.slice(along: 1, 0..<hidden)), candidate = tanh(z.slice(along: 1, hidden..<(2 * hidden)))
            return f * h + (1 - f) * candidate
        },
    ]

    static func stateWidth(_ cell: Cell) -> Int { cell.name == "lstm" ? 2 * hidden : hidden }

    func makeParameters(_ cell: Cell) -> [Parameter] {
        let width = cell.gates * Self.hidden
        return [[Self.features, width], [Self.hidden, width], [width]].enumerated().map { k, shape in
            Parameter("\(cell.name)\(k)", Tensor.randomUniform(shape, in: -0.4...0.4, seed: 40 + UInt64(k)))
        }
    }

    /// Records the layer over `x` ([T·B, F], time-major) and a squared loss; returns the tape, x, the projection.
    func record(_ cell: Cell, _ parameters: [Parameter], x: Tensor) -> (tape: Tape, x: Node, loss: Node, projection: Node) {
        let tape = Tape()
        let input = tape.constant(x)
        let w = tape.parameter(parameters[0]), u = tape.parameter(parameters[1]), b = tape.parameter(parameters[2])
        let projection = matmul(input, w) + b
        var state = tape.constant(Tensor.zeros([Self.batch, Self.stateWidth(cell)]))
        for t in 0..<Self.steps {
            state = cell.step(projection.slice(along: 0, (t * Self.batch)..<((t + 1) * Self.batch)), state, u)
        }
        return (tape, input, (state * state).sum(), projection)
    }

    func makeInput(seed: UInt64) -> Tensor {
        Tensor.randomUniform([Self.steps * Self.batch, Self.features], in: -1...1, seed: seed)
    }

    func testSumsTakeTheirGradientInTheProjectionsGradient() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, x, loss, projection) = record(cell, parameters, x: makeInput(seed: 1))
            let plan = Plan(tape: tape, inputs: [x], outputs: [loss], differentiating: loss)
            let kernels = plan.kernels, nodes = tape.nodes
            // No backward sweep of an addition alone (it copied the sum's gradient into the slice's region).
            let copies = kernels.filter { $0.isBackward && $0.kind == .fused && $0.nodes.count == 1 && nodes[$0.nodes[0]].op == "add" }
            XCTAssertEqual(copies.count, 0, "\(cell.name):\n\(plan.summary)")
            // Each step's dzₜ lies in d(x·W + b): the recurrent weight's product stacks no copy of them.
            let width = cell.gates * Self.hidden
            let stacks = plan.buffers.filter { $0.isGradient && $0.count == Self.steps * Self.batch * width }
            XCTAssertEqual(stacks.count, 1, "\(cell.name): gradient buffers of [T·B, \(width)] \(stacks.map(\.nodes))")
            XCTAssertTrue(stacks.first?.nodes.contains(projection.index) ?? false, cell.name)
            // Every step's sum shares that buffer, and so does every step's product h·U (passed through).
            let sums = nodes.filter { $0.op == "add" && $0.shape == [Self.batch, width] }.map(\.index)
            XCTAssertEqual(sums.count, Self.steps, cell.name)
            XCTAssertTrue(sums.allSatisfy { stacks.first?.nodes.contains($0) ?? false }, cell.name)
            // U's stacked product copies at most the zero initial state into its left stack.
            let recurrentWeight = nodes.first { $0.kind == .parameter("\(cell.name)1") }!.index
            XCTAssertLessThanOrEqual(kernels.filter { $0.kind == .copy && $0.nodes == [recurrentWeight] }.count, 1,
                                     "\(cell.name):\n\(plan.summary)")
        }
    }

    func testPlacedGradientsMatchEager() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, x, loss, _) = record(cell, parameters, x: makeInput(seed: 1))
            let plan = Plan(tape: tape, inputs: [x], outputs: [loss], differentiating: loss)
            let input = makeInput(seed: 2)
            for parameter in parameters { parameter.gradient = nil }
            let replayed = plan.replay([input])
            let compiled = parameters.map { $0.gradient! }
            for parameter in parameters { parameter.gradient = nil }
            let eager = record(cell, parameters, x: input)
            eager.tape.backward(from: eager.loss)
            assertClose(replayed[0], eager.loss.value, tolerance: 1e-6, "\(cell.name) loss")
            for (k, parameter) in parameters.enumerated() {
                assertClose(compiled[k], parameter.gradient!, tolerance: 1e-6, "\(cell.name) gradient \(k)")
            }
        }
    }

    func testStridedStoresIntoTheProjectionsRegionsZeroNothing() {
        // A minimal gated unit reads its rows of the projection as two column slices, each with a product added in
        // place; its backward sweep stores both slices' gradients, which cover the step's region of d(x·W + b):
        // nothing zeroes that gradient first.
        let hidden = Self.hidden
        let parameters = [[Self.features, 2 * hidden], [hidden, hidden], [hidden, hidden], [2 * hidden]].enumerated().map {
            Parameter("mgu\($0)", Tensor.randomUniform($1, in: -0.4...0.4, seed: 50 + UInt64($0)))
        }
        func record(_ x: Tensor) -> (Tape, Node, Node, Node) {
            let tape = Tape()
            let input = tape.constant(x)
            let p = parameters.map { tape.parameter($0) }
            let projection = matmul(input, p[0]) + p[3]
            var h = tape.constant(Tensor.zeros([Self.batch, hidden]))
            for t in 0..<Self.steps {
                let rows = projection.slice(along: 0, (t * Self.batch)..<((t + 1) * Self.batch))
                let f = sigmoid(rows.slice(along: 1, 0..<hidden) + matmul(h, p[1]))
                let candidate = tanh(rows.slice(along: 1, hidden..<(2 * hidden)) + matmul(f * h, p[2]))
                h = (1 - f) * h + f * candidate
            }
            return (tape, input, (h * h).sum(), projection)
        }
        let (tape, x, loss, projection) = record(makeInput(seed: 3))
        let plan = Plan(tape: tape, inputs: [x], outputs: [loss], differentiating: loss)
        XCTAssertFalse(plan.kernels.contains { $0.kind == .fill && $0.nodes.contains(projection.index) }, plan.summary)
        let input = makeInput(seed: 4)
        for parameter in parameters { parameter.gradient = nil }
        let replayed = plan.replay([input])
        let compiled = parameters.map { $0.gradient! }
        for parameter in parameters { parameter.gradient = nil }
        let (eager, _, eagerLoss, _) = record(input)
        eager.backward(from: eagerLoss)
        assertClose(replayed[0], eagerLoss.value, tolerance: 1e-6, "mgu loss")
        for (k, parameter) in parameters.enumerated() {
            assertClose(compiled[k], parameter.gradient!, tolerance: 1e-6, "mgu gradient \(k)")
        }
    }

    func testColumnSlicesOfARowSliceAddToWhatOtherReadersWrote() {
        // A product's first rows are read as two column slices by one sweep, and the whole product by a later
        // sweep: backward writes the whole gradient first, so the slices' sweep must add into its rows, not store.
        let shapes = [[3, 5], [5, 12]]
        let inputs = shapes.enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: 80 + UInt64($0)) }
        let other = shapes.enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: 90 + UInt64($0)) }
        checkReplay("rows read twice", inputs, other: other, tolerance: 0, unfusedTolerance: 0) { n in
            let product = n[0].matmul(n[1])
            let rows = product.slice(along: 0, 0..<2)
            let gated = sigmoid(rows.slice(along: 1, 0..<6)) * tanh(rows.slice(along: 1, 6..<12))
            return gated.sum() + (product * product).sum()
        }
    }

    func testOperandsWhoseGradientIsWrittenAgainKeepTheirOwnBuffer() {
        // The product added to each step's rows is read first by another addition, whose backward adds into the
        // product's gradient after the sum's backward: the sum's gradient must not be the projection's region
        // then (it would be handed on to the product and changed there).
        let shapes = [[12, 5], [5, 12], [12], [6, 12], [3, 6], [3, 12]]
        let inputs = shapes.enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: 60 + UInt64($0)) }
        let other = shapes.enumerated().map { Tensor.randomUniform($1, in: -1...1, seed: 70 + UInt64($0)) }
        checkReplay("product read again", inputs, other: other, tolerance: 0, unfusedTolerance: 0) { n in
            let projection = n[0].matmul(n[1]) + n[2]
            var h = n[4], extra = n[5]
            for t in 0..<4 {
                let product = h.matmul(n[3])
                extra = extra + product
                let z = projection.slice(along: 0, (3 * t)..<(3 * t + 3)) + product
                h = tanh(z.slice(along: 1, 0..<6)) * sigmoid(z.slice(along: 1, 6..<12))
            }
            return h * extra.slice(along: 1, 0..<6)
        }
    }
}
