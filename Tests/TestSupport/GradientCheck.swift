import Graph
import XCTest

/// Checks the gradients a tape computes for `function` against central finite differences, element by element.
///
/// `function` builds a node from the given inputs (recorded as variables on a fresh tape); a non-scalar output
/// is reduced to the scalar `sum(output ⊙ R)` with fixed random weights `R`, so every output element matters.
/// That reduction is done in `Double` (the ops themselves are `Float`), so the reference loses no precision
/// summing. Each input element is perturbed by ±`epsilon` and ±`epsilon`/2 and the two central differences are
/// combined by Richardson extrapolation (error O(ε⁴) instead of O(ε²)). Every element must satisfy
/// `|analytic − numeric| ≤ tolerance·|numeric| + absoluteFloor`: a wrong small entry is caught even beside a
/// large one, which a tolerance relative to the largest magnitude would let through.
public func checkGradients(_ inputs: [Tensor], epsilon: Float = 1e-2, tolerance: Float = 1e-2,
                           absoluteFloor: Float = 1e-3,
                           _ label: String = "", file: StaticString = #filePath, line: UInt = #line,
                           _ function: ([Node]) -> Node) {
    var weights: Tensor? = nil
    func lossValue(_ output: Tensor) -> Double {
        if weights == nil { weights = Tensor.randomUniform(output.shape, in: 0.5...1.5, seed: 7) }
        return zip(output.scalars, weights!.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }
    let tape = Tape()
    let variables = inputs.map { tape.variable($0) }
    let output = function(variables)
    _ = lossValue(output.value)
    tape.backward(from: (output * tape.constant(weights!)).sum())
    for (number, input) in inputs.enumerated() {
        let analytic = tape.gradient(of: variables[number])
        XCTAssertEqual(analytic.shape, input.shape, "\(label) input \(number): gradient shape", file: file, line: line)
        var numeric = [Float](repeating: 0, count: input.count)
        for i in 0..<input.count {
            func evaluate(_ delta: Float) -> Double {
                var shifted = input
                shifted.withUnsafeMutableBufferPointer { $0[i] += delta }
                var args = inputs
                args[number] = shifted
                let probe = Tape()
                return lossValue(function(args.map { probe.variable($0) }).value)
            }
            func centralDifference(_ step: Float) -> Double {
                (evaluate(step) - evaluate(-step)) / (2 * Double(step))
            }
            numeric[i] = Float((4 * centralDifference(epsilon / 2) - centralDifference(epsilon)) / 3)
        }
        let bad = gradientMismatches(analytic: analytic.scalars, numeric: numeric, tolerance: tolerance,
                                     absoluteFloor: absoluteFloor)
        if let first = bad.first {
            XCTFail("\(label) input \(number): \(bad.count) of \(numeric.count) elements differ; first at \(first): "
                    + "analytic \(analytic.scalars[first]) vs numeric \(numeric[first])", file: file, line: line)
        }
    }
}

/// Returns the indices where `|analytic − numeric| > tolerance·|numeric| + absoluteFloor`.
public func gradientMismatches(analytic: [Float], numeric: [Float], tolerance: Float, absoluteFloor: Float) -> [Int] {
    zip(analytic, numeric).enumerated().compactMap { index, pair in
        Swift.abs(pair.0 - pair.1) <= tolerance * Swift.abs(pair.1) + absoluteFloor ? nil : index
    }
}

/// Returns the central differences of `f` with respect to every element of `parameter`, whose value is restored
/// after each evaluation.
public func numericGradient(of parameter: Parameter, epsilon: Float = 1e-2, _ f: () -> Float) -> Tensor {
    let original = parameter.value
    let numeric = (0..<original.count).map { i in
        func evaluate(_ delta: Float) -> Float {
            var scalars = original.scalars
            scalars[i] += delta
            parameter.value = Tensor(shape: original.shape, scalars: scalars)
            defer { parameter.value = original }
            return f()
        }
        return (evaluate(epsilon) - evaluate(-epsilon)) / (2 * epsilon)
    }
    return Tensor(shape: original.shape, scalars: numeric)
}
