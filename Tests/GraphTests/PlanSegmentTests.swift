import Graph
import TestSupport
import XCTest

/// Row-parallel segments: recurrences written from nodes run split by batch rows, compute what eager computes,
/// give the same bits for every thread count, and never share arena bytes between buffers a segment touches.
final class PlanSegmentTests: XCTestCase {
    /// A recurrent cell written from nodes: `(x, h, parameters) -> h'` (the state is one tensor, or for the LSTM
    /// `h` and `c` side by side).
    struct Cell: Sendable {
        var name: String
        var stateWidth: Int
        var parameterShapes: [[Int]]
        var step: @Sendable (Node, Node, [Node]) -> Node
    }

    static let hidden = 24, features = 5, batch = 16, steps = 6

    static let cells: [Cell] = [
        Cell(name: "lstm", stateWidth: 2 * hidden, parameterShapes: [[features, 4 * hidden], [hidden, 4 * hidden], [4 * hidden]]) { x, state, p in
            let h = state.slice(along: 1, 0..<hidden), c = state.slice(along: 1, hidden..<(2 * hidden))
            let z = matmul(x, p[0]) + matmul(h, p[1]) + p[2]
            let i = sigmoid(z.slice(along: 1, 0..<hidden)), f = sigmoid(z.slice(along: 1, hidden..<(2 * hidden)))
            let g = tanh(z.slice(along: 1, (2 * hidden)..<(3 * hidden))), o = sigmoid(z.slice(along: 1, (3 * hidden)..<(4 * hidden)))
            let c2 = f * c + i * g
            return concatenate([o * tanh(c2), c2], along: 1)
        },
        Cell(name: "gru", stateWidth: hidden, parameterShapes: [[features, 3 * hidden], [hidden, 3 * hidden], [3 * hidden], [3 * hidden]]) { x, h, p in
            let xz = matmul(x, p[0]) + p[2], hz = matmul(h, p[1]) + p[3]
            let z = sigmoid(xz.slice(along: 1, 0..<hidden) + hz.slice(along: 1, 0..<hidden))
            let r = sigmoid(xz.slice(along: 1, hidden..<(2 * hidden)) + hz.slice(along: 1, hidden..<(2 * hidden)))
            let candidate = tanh(xz.slice(along: 1, (2 * hidden)..<(3 * hidden)) + r * hz.slice(along: 1, (2 * hidden)..<(3 * hidden)))
            return z * h + (1 - z) * candidate
        },
        // The minimal gated unit of the custom-mgu workload: a product of the gated state inside the step.
        Cell(name: "mgu", stateWidth: hidden, parameterShapes: [[features, 2 * hidden], [hidden, hidden], [hidden, hidden], [2 * hidden]]) { x, h, p in
            let xw = matmul(x, p[0]) + p[3]
            let f = sigmoid(xw.slice(along: 1, 0..<hidden) + matmul(h, p[1]))
            let candidate = tanh(xw.slice(along: 1, hidden..<(2 * hidden)) + matmul(f * h, p[2]))
            return (1 - f) * h + f * candidate
        },
    ]

    /// Records `steps` steps of `cell` and a squared loss on a tape.
    func record(_ cell: Cell, parameters: [Parameter], inputs: [Tensor]) -> (Tape, [Node], Node, Node) {
        let tape = Tape()
        let xs = inputs.map { tape.variable($0) }
        var state = tape.constant(Tensor.zeros([Self.batch, cell.stateWidth]))
        for x in xs { state = cell.step(x, state, parameters.map { tape.parameter($0) }) }
        let loss = (state * state).sum()
        return (tape, xs, state, loss)
    }

    func makeParameters(_ cell: Cell) -> [Parameter] {
        cell.parameterShapes.enumerated().map { k, shape in
            Parameter("\(cell.name)\(k)", Tensor.randomUniform(shape, in: -0.4...0.4, seed: 70 + UInt64(k)))
        }
    }

    func makeInputs(seed: UInt64) -> [Tensor] {
        (0..<Self.steps).map { Tensor.randomUniform([Self.batch, Self.features], in: -1...1, seed: seed + UInt64($0)) }
    }

    /// Replays the compiled step on fresh inputs: the bits of the state, the loss and every parameter gradient.
    func replayBits(_ cell: Cell, threads: Int) -> [[UInt32]] {
        GEMMThreads.withCount(threads) {
            let parameters = makeParameters(cell)
            let (tape, xs, state, loss) = record(cell, parameters: parameters, inputs: makeInputs(seed: 10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [state, loss], differentiating: loss)
            for parameter in parameters { parameter.gradient = nil }
            let values = plan.replay(makeInputs(seed: 20))
            return (values + parameters.map { $0.gradient! }).map { $0.scalars.map(\.bitPattern) }
        }
    }

    func testRecurrencesRunInRowParallelSegmentsForwardAndBackward() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, xs, state, loss) = record(cell, parameters: parameters, inputs: makeInputs(seed: 10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [state, loss], differentiating: loss)
            let kernels = plan.kernels, segments = plan.rowSegments
            XCTAssertTrue(segments.contains { !kernels[$0.kernels.lowerBound].isBackward }, "\(cell.name): no forward segment")
            XCTAssertTrue(segments.contains { kernels[$0.kernels.lowerBound].isBackward }, "\(cell.name): no backward segment")
            // Every time step's recurrent product runs inside a segment, forward and backward.
            let recurrent = kernels.filter { [.matmul, .accumulatingMatmul].contains($0.kind) && $0.flops == 2 * Self.batch * Self.hidden * cell.parameterShapes[1][1] }
            XCTAssertGreaterThanOrEqual(recurrent.count, 2 * (Self.steps - 1), cell.name)
            XCTAssertEqual(recurrent.filter { $0.segment == nil }.count, 0, "\(cell.name): recurrent products outside segments")
            if cell.name != "lstm" {
                // A bias row added to a product (`x·W + b`, the GRU's `h·U + b`) is where the GEMM starts the sum
                // from: no copy spreads it first (the LSTM's concatenated state is copied).
                XCTAssertEqual(kernels.filter { $0.kind == .copy && !$0.isBackward && $0.segment != nil }.count, 0,
                               "\(cell.name): copies in forward segments")
            }
            for segment in segments {
                XCTAssertEqual(segment.rows, Self.batch, cell.name)
                XCTAssertEqual(segment.parts, 2, cell.name)
                XCTAssertGreaterThanOrEqual(segment.kernels.count, 2, cell.name)
                for index in segment.kernels { XCTAssertEqual(kernels[index].segment, segments.firstIndex(of: segment)) }
            }
            XCTAssertTrue(plan.summary.contains("row-parallel segments"), cell.name)
        }
    }

    /// Two parts run different kernels of a segment at once: no two buffers alive during a segment may share bytes.
    func testBuffersTouchedInOneSegmentNeverShareArenaBytes() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, xs, state, loss) = record(cell, parameters: parameters, inputs: makeInputs(seed: 10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [state, loss], differentiating: loss)
            let arena = plan.buffers.filter { $0.arenaOffset != nil }
            for segment in plan.rowSegments {
                let span = segment.kernels.lowerBound...(segment.kernels.upperBound - 1)
                let alive = arena.filter { $0.lifetime.overlaps(span) }
                for (k, a) in alive.enumerated() {
                    for b in alive[(k + 1)...] {
                        let aRange = a.arenaOffset!..<(a.arenaOffset! + a.count), bRange = b.arenaOffset!..<(b.arenaOffset! + b.count)
                        XCTAssertFalse(aRange.overlaps(bRange),
                                       "\(cell.name): buffers of nodes \(a.nodes) and \(b.nodes) share bytes inside segment \(span)")
                    }
                }
            }
        }
    }

    func testSegmentedReplayMatchesEager() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, xs, state, loss) = record(cell, parameters: parameters, inputs: makeInputs(seed: 10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [state, loss], differentiating: loss)
            let inputs = makeInputs(seed: 30)
            for parameter in parameters { parameter.gradient = nil }
            let replayed = plan.replay(inputs)
            let compiledGradients = parameters.map { $0.gradient! }
            for parameter in parameters { parameter.gradient = nil }
            let (eager, _, eagerState, eagerLoss) = record(cell, parameters: parameters, inputs: inputs)
            eager.backward(from: eagerLoss)
            assertClose(replayed[0], eagerState.value, tolerance: 1e-6, "\(cell.name) state")
            assertClose(replayed[1], eagerLoss.value, tolerance: 1e-6, "\(cell.name) loss")
            for (k, parameter) in parameters.enumerated() {
                assertClose(compiledGradients[k], parameter.gradient!, tolerance: 1e-6, "\(cell.name) gradient \(k)")
            }
        }
    }

    /// A segment's arena addresses are filled in once; inputs and parameters may lie elsewhere at every replay
    /// (a new batch, weights replaced by loading): a later replay must read them where they are now.
    func testSegmentsReadMovedInputsAndParametersOnLaterReplays() {
        for cell in Self.cells {
            let parameters = makeParameters(cell)
            let (tape, xs, _, loss) = record(cell, parameters: parameters, inputs: makeInputs(seed: 10))
            let plan = Plan(tape: tape, inputs: xs, outputs: [loss], differentiating: loss)
            _ = plan.replay(makeInputs(seed: 30))
            for (k, parameter) in parameters.enumerated() {
                parameter.value = Tensor.randomUniform(parameter.shape, in: -0.4...0.4, seed: 90 + UInt64(k))
                parameter.gradient = nil
            }
            let inputs = makeInputs(seed: 40)
            let replayed = plan.replay(inputs)[0]
            let compiledGradients = parameters.map { $0.gradient! }
            for parameter in parameters { parameter.gradient = nil }
            let (eager, _, _, eagerLoss) = record(cell, parameters: parameters, inputs: inputs)
            eager.backward(from: eagerLoss)
            assertClose(replayed, eagerLoss.value, tolerance: 1e-6, "\(cell.name) loss")
            for (k, parameter) in parameters.enumerated() {
                assertClose(compiledGradients[k], parameter.gradient!, tolerance: 1e-6, "\(cell.name) gradient \(k)")
            }
        }
    }

    func testSegmentedReplayIsBitwiseTheSameForEveryThreadCount() {
        for cell in Self.cells {
            let one = replayBits(cell, threads: 1)
            for threads in [2, 3, 7] {
                let other = replayBits(cell, threads: threads)
                XCTAssertEqual(other.count, one.count)
                for (k, (a, b)) in zip(one, other).enumerated() {
                    let differing = zip(a, b).filter { $0 != $1 }.count
                    XCTAssertEqual(differing, 0, "\(cell.name) tensor \(k): \(differing) of \(a.count) values differ between 1 and \(threads) threads")
                }
            }
        }
    }
}
