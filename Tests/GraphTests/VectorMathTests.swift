import Kernels
import XCTest

/// The transcendentals' AVX-512F loops (16 lanes, taken by optimised builds where the CPU has AVX-512F) give the bits
/// of their AVX2 loops, so a model computes the same numbers on either kind of machine. A NaN in gives a NaN out in
/// both, but which payload and sign it carries depends on the operand order the compiler picks for each fused
/// multiply-add, so NaNs are compared as NaNs.
final class VectorMathTests: XCTestCase {
    /// Inputs that reach every path: random bit patterns (NaN, infinities, subnormals, huge values), a sweep of
    /// [-120, 120] across both scalings, and values near 0.
    func inputs() -> [Float] {
        var values: [Float] = []
        var state: UInt32 = 12345
        for _ in 0..<40_000 {
            state = state &* 1_664_525 &+ 1_013_904_223
            values.append(Float(bitPattern: state))
        }
        for i in 0..<40_000 { values.append(-120 + 240 * Float(i) / 40_000) }
        for i in 0..<1_000 { values.append(Float(i) * 1e-6 - 5e-4) }
        return values
    }

    func testAVX512LoopsGiveTheAVX2Bits() throws {
        guard unroll_has_avx512() != 0, unroll_has_avx2_fma() != 0 else {
            throw XCTSkip("this CPU has no AVX-512F")
        }
        let x = inputs()
        let loops: [(String, Int32, (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void)] = [
            ("exp", 0, { unroll_vexp($0, $1, $2) }),
            ("tanh", 1, { unroll_vtanh($0, $1, $2) }),
            ("sigmoid", 2, { unroll_vsigmoid($0, $1, $2) }),
        ]
        for (name, code, avx2) in loops {
            // Every length up to three vectors and a tail, then the whole array.
            for count in Array(0...40) + [x.count] {
                var expected = [Float](repeating: 77, count: count + 8)
                var got = expected
                unroll_kernels_avoid_avx512(1)
                x.withUnsafeBufferPointer { x in expected.withUnsafeMutableBufferPointer { avx2(x.baseAddress!, $0.baseAddress!, count) } }
                unroll_kernels_avoid_avx512(0)
                let ran = x.withUnsafeBufferPointer { x in
                    got.withUnsafeMutableBufferPointer { unroll_vmath_avx512(code, x.baseAddress!, $0.baseAddress!, count) }
                }
                XCTAssertEqual(ran, 1)
                let differing = got.indices.first { i in
                    got[i].bitPattern != expected[i].bitPattern && !(got[i].isNaN && expected[i].isNaN)
                }
                XCTAssertNil(differing, "\(name) over \(count) values (and nothing written past them): x = \(differing.map { x[$0] } ?? 0)")
            }
        }
        // Known values, so that both loops are not wrong the same way.
        var y = [Float](repeating: 0, count: 3)
        XCTAssertEqual(unroll_vmath_avx512(1, [0.5, -2, 20], &y, 3), 1)
        XCTAssertEqual(Double(y[0]), tanh(0.5), accuracy: 2e-7)
        XCTAssertEqual(Double(y[1]), tanh(-2.0), accuracy: 2e-7)
        XCTAssertEqual(y[2], 1)
        XCTAssertEqual(unroll_vmath_avx512(2, [0, 3, -3], &y, 3), 1)
        XCTAssertEqual(y[0], 0.5)
        XCTAssertEqual(Double(y[1]), 1 / (1 + exp(-3.0)), accuracy: 2e-7)
        XCTAssertEqual(Double(y[2]), 1 / (1 + exp(3.0)), accuracy: 2e-7)
        XCTAssertEqual(unroll_vmath_avx512(0, [0, 1, -1000], &y, 3), 1)
        XCTAssertEqual(y[0], 1)
        XCTAssertEqual(Double(y[1]), M_E, accuracy: 3e-7)
        XCTAssertEqual(y[2], 0)
    }
}
