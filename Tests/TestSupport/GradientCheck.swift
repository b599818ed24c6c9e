import Graph
import XCTest

/// Checks the gradients a tape computes for `function` against central finite differences.
///
/// `function` builds a node from the given inputs (recorded as variables on a fresh tape); a
/// non-scalar output is reduced to the scalar `sum(output ⊙ R)` with fixed random weights `R`, so
/// every output element matters. Each input element is perturbed by ±`epsilon`; the analytic and
/// numeric gradients must agree within `tolerance` relative to the largest numeric magnitude
/// (with a floor of `epsilon` for gradients near zero).
public func checkGradients(_ inputs: [Tensor], epsilon: Float = 1e-2, tolerance: Float = 2e-2,
                           _ label: String = "", file: StaticString = #filePath, line: UInt = #line,
                           _ function: ([Node]) -> Node) {
    var weights: Tensor? = nil
    func loss(_ tape: Tape, _ nodes: [Node]) -> Node {
        let output = function(nodes)
        if weights == nil {
            weights = Tensor.randomUniform(output.shape, in: 0.5...1.5, seed: 7)
        }
        return (output * tape.constant(weights!)).sum()
    }
    let tape = Tape()
    let variables = inputs.map { tape.variable($0) }
    tape.backward(from: loss(tape, variables))
    for (number, input) in inputs.enumerated() {
        let analytic = tape.gradient(of: variables[number])
        var numeric = [Float](repeating: 0, count: input.count)
        for i in 0..<input.count {
            func evaluate(_ delta: Float) -> Double {
                var shifted = input
                shifted.withUnsafeMutableBufferPointer { $0[i] += delta }
                var args = inputs
                args[number] = shifted
                let probe = Tape()
                return Double(loss(probe, args.map { probe.variable($0) }).value.scalar)
            }
            numeric[i] = Float((evaluate(epsilon) - evaluate(-epsilon)) / (2 * Double(epsilon)))
        }
        let expected = Tensor(shape: input.shape, scalars: numeric)
        let scale = max(epsilon, numeric.map { Swift.abs($0) }.max() ?? 0)
        let error = zip(analytic.scalars, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
        XCTAssertEqual(analytic.shape, input.shape, "\(label) input \(number): gradient shape", file: file, line: line)
        if !(error <= tolerance * scale) {
            XCTFail("\(label) input \(number): analytic \(analytic.scalars.prefix(8)) vs numeric \(expected.scalars.prefix(8)); max error \(error), scale \(scale)",
                    file: file, line: line)
        }
    }
}
