@testable import Graph
import TestSupport
import XCTest

/// Products from packed right operands, and the tape's cache of packed parameters.
final class PackedMatrixTests: XCTestCase {
    /// Shapes of a recurrent layer's products (h·U and dG·Uᵀ for batch 13..128) and block edges.
    private let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 1, 1), (3, 5, 7), (13, 16, 64), (13, 64, 16), (16, 128, 384), (16, 384, 128), (32, 256, 1024),
        (32, 1024, 256), (21, 257, 33), (7, 300, 17), (128, 400, 1600), (150, 70, 5),
    ]

    func testPackedProductAgreesWithUnpacked() {
        for (index, shape) in shapes.enumerated() {
            for transposingSelf in [false, true] {
                for transposed in [false, true] {
                    let seed = UInt64(index * 4) + (transposingSelf ? 2 : 0) + (transposed ? 1 : 0)
                    let a = Tensor.randomUniform(transposingSelf ? [shape.k, shape.m] : [shape.m, shape.k], in: -1...1, seed: seed)
                    let b = Tensor.randomUniform(transposed ? [shape.n, shape.k] : [shape.k, shape.n], in: -1...1, seed: seed + 100)
                    let packed = b.packedForMatmul(transposed: transposed)
                    XCTAssertEqual([packed.rows, packed.columns], [shape.k, shape.n])
                    let expected = a.matmul(b, transposingSelf: transposingSelf, transposingOther: transposed)
                    let label = "\(shape) transposingSelf \(transposingSelf) transposed \(transposed)"
                    assertClose(a.matmul(packed, transposingSelf: transposingSelf), expected, tolerance: 1e-5, label)
                    // Accumulating into an existing product doubles it.
                    var sum = expected
                    sum.addMatmul(a, packed, transposingA: transposingSelf)
                    assertClose(sum, expected * Tensor(scalar: 2), tolerance: 1e-5, label + " accumulated")
                }
            }
        }
    }

    func testPackedProductIsTheSameForAnyThreadCount() {
        for shape in [(m: 32, k: 256, n: 1024), (m: 128, k: 1600, n: 400), (m: 100, k: 64, n: 20)] {
            let a = Tensor.randomUniform([shape.m, shape.k], in: -1...1, seed: 7)
            let packed = Tensor.randomUniform([shape.k, shape.n], in: -1...1, seed: 8).packedForMatmul()
            func product(threads: Int) -> Tensor {
                let c = Tensor(uninitializedShape: [shape.m, shape.n])
                packedGEMM(transposeA: false, m: shape.m, a: a.base, lda: shape.k, packed: packed, beta: 0,
                           c: c.base, ldc: shape.n, threads: threads)
                return c
            }
            let one = product(threads: 1)
            for threads in [2, 3, 7] { XCTAssertEqual(product(threads: threads), one, "\(shape), \(threads) threads") }
        }
    }

    /// A step of a toy recurrence: h' = tanh((h·U)[:, 0..<32]) + (h·U)[:, 32..<64].
    private func unrolled(_ h0: Node, _ u: Node, steps: Int) -> Node {
        var h = h0
        for _ in 0..<steps {
            let gates = h.matmul(u)
            h = tanh(gates.slice(along: 1, 0..<32)) + gates.slice(along: 1, 32..<64)
        }
        return (h * h).sum()
    }

    func testTapePacksAReusedParameterOnceAndAgreesWithUnpacked() {
        let weights = Tensor.randomUniform([32, 64], in: -0.3...0.3, seed: 3)
        let start = Tensor.randomUniform([16, 32], in: -1...1, seed: 4)
        let parameter = Parameter("recurrent_kernel", weights)

        let tape = Tape()
        let h0 = tape.variable(start)
        let first = h0.matmul(tape.parameter(parameter))
        XCTAssertEqual(tape.packedOperandCount, 0, "a first use is not packed")
        _ = first
        let loss = unrolled(h0, tape.parameter(parameter), steps: 6)
        XCTAssertEqual(tape.packedOperandCount, 1, "U packed once for the forward products")
        tape.backward(from: loss)
        XCTAssertEqual(tape.packedOperandCount, 2, "Uᵀ packed once for the backward products")

        // The same graph with U as a plain variable (never packed).
        let reference = Tape()
        let r0 = reference.variable(start)
        let u = reference.variable(weights)
        let referenceLoss = unrolled(r0, u, steps: 6)
        reference.backward(from: referenceLoss)
        XCTAssertEqual(reference.packedOperandCount, 0)
        assertClose(loss.value, referenceLoss.value, tolerance: 1e-5, "loss")
        assertClose(parameter.gradient!, reference.gradient(of: u), tolerance: 1e-5, "dU")
        assertClose(tape.gradient(of: h0), reference.gradient(of: r0), tolerance: 1e-5, "dh0")
    }

    func testPackedParameterIsNeverStaleAfterAnUpdate() {
        let parameter = Parameter("recurrent_kernel", Tensor.randomUniform([32, 64], in: -0.3...0.3, seed: 5))
        let start = Tensor.randomUniform([16, 32], in: -1...1, seed: 6)
        let tape = Tape()
        for step in 0..<3 {
            tape.removeAll()
            XCTAssertEqual(tape.packedOperandCount, 0, "clearing the tape drops the packed weights")
            let loss = unrolled(tape.constant(start), tape.parameter(parameter), steps: 4)
            XCTAssertEqual(tape.packedOperandCount, 1)
            let expected = unrolled(Node(start), Node(parameter.value), steps: 4)
            assertClose(loss.value, expected.value, tolerance: 1e-5, "step \(step)")
            tape.backward(from: loss)
            // An optimizer step between training steps, while the tape still holds its records.
            parameter.value = parameter.value - parameter.gradient! * Tensor(scalar: 0.1)
            parameter.zeroGradient()
        }
    }
}
