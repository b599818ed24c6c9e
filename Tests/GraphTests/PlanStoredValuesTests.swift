import Graph
import XCTest

/// The fuser's store-or-recompute rule: a sweep's backward reads the transcendental members forward stored when
/// that keeps the floats it reads about the same, and re-evaluates them when storing would keep many more.
final class PlanStoredValuesTests: XCTestCase {
    func plan(_ inputs: [Tensor], _ body: ([Node]) -> Node) -> Plan {
        let tape = Tape()
        let nodes = inputs.map { tape.variable($0) }
        let output = body(nodes)
        let loss = (output * output).sum()
        return Plan(tape: tape, inputs: nodes, outputs: [output], differentiating: loss, gradients: nodes)
    }

    func instructions(_ plan: Plan, backward: Bool) -> [String] {
        plan.kernels.filter { $0.kind == .fused && $0.isBackward == backward }.flatMap(\.instructions)
    }

    func lstmStep(_ n: [Node]) -> Node {
        let i = sigmoid(n[0].slice(along: 1, 0..<4)), f = sigmoid(n[0].slice(along: 1, 4..<8))
        let g = tanh(n[0].slice(along: 1, 8..<12)), o = sigmoid(n[0].slice(along: 1, 12..<16))
        return o * tanh(f * n[1] + i * g)
    }

    func testLSTMGatesAreStoredNotRecomputed() {
        let z = Tensor.randomUniform([3, 16], in: -2...2, seed: 1), c = Tensor.randomUniform([3, 4], in: -1...1, seed: 2)
        let plan = plan([z, c], lstmStep)
        // The gates' pre-activations are no longer read by backward: the activated gates replace them.
        XCTAssertEqual(instructions(plan, backward: false).filter { $0 == "sigmoid" || $0 == "tanh" }.count, 5)
        XCTAssertEqual(instructions(plan, backward: true).filter { $0 == "sigmoid" || $0 == "tanh" }, [],
                       "backward re-evaluates a transcendental forward stored")
        checkReplay("stored gates", [z, c], other: [Tensor.randomUniform([3, 16], in: -2...2, seed: 3),
                                                    Tensor.randomUniform([3, 4], in: -1...1, seed: 4)], lstmStep)
    }

    func testCellStateTanhIsRecomputedWhereItsInputIsKeptAnyway() {
        // Two steps: c' is kept for the next step's backward, so storing tanh(c') would only add floats; it is
        // re-evaluated (one tanh per step), while the gates stay stored (no sigmoid in backward).
        let z = Tensor.randomUniform([6, 16], in: -2...2, seed: 11), c = Tensor.randomUniform([3, 4], in: -1...1, seed: 12)
        let body: ([Node]) -> Node = { n in
            var c = n[1], h: Node? = nil
            for t in 0..<2 {
                let gates = n[0].slice(along: 0, (3 * t)..<(3 * t + 3))
                let i = sigmoid(gates.slice(along: 1, 0..<4)), f = sigmoid(gates.slice(along: 1, 4..<8))
                let g = tanh(gates.slice(along: 1, 8..<12)), o = sigmoid(gates.slice(along: 1, 12..<16))
                c = f * c + i * g
                h = h.map { $0 + o * tanh(c) } ?? o * tanh(c)
            }
            return h!
        }
        let plan = plan([z, c], body)
        XCTAssertEqual(instructions(plan, backward: true).filter { $0 == "sigmoid" }, [])
        XCTAssertEqual(instructions(plan, backward: true).filter { $0 == "tanh" }.count, 2)
        checkReplay("recomputed tanh(c')", [z, c], other: [Tensor.randomUniform([6, 16], in: -2...2, seed: 13),
                                                           Tensor.randomUniform([3, 4], in: -1...1, seed: 14)], body)
    }

    func testStoredValuesKeepEagerBits() {
        let z = Tensor.randomUniform([5, 16], in: -3...3, seed: 5), c = Tensor.randomUniform([5, 4], in: -1...1, seed: 6)
        checkReplay("stored gates bitwise", [z, c], other: [Tensor.randomUniform([5, 16], in: -3...3, seed: 7),
                                                            Tensor.randomUniform([5, 4], in: -1...1, seed: 8)],
                    tolerance: 0, lstmStep)
    }

    func testRecomputedWhenStoringWouldKeepMuchMore() {
        // Backward reads x anyway (the product's other factor): storing exp(x) would double what it keeps.
        let x = Tensor.randomUniform([3, 8], in: -1...1, seed: 9)
        let plan = plan([x]) { n in exp(n[0]) * n[0] + 1 }
        XCTAssertEqual(instructions(plan, backward: true).filter { $0 == "exp" }.count, 1)
        checkReplay("recomputed exp", [x], other: [Tensor.randomUniform([3, 8], in: -1...1, seed: 10)]) { n in
            exp(n[0]) * n[0] + 1
        }
    }
}
