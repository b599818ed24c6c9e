import Kernels
import TestSupport
import XCTest

/// A stacked part whose op(A) is zero in its leading rows of K (a weight gradient's term of the zero initial state,
/// `unroll_sgemm_stacked_part.zero_k`) starts its first K block after them: the same bits as summing their +0
/// products, and the rows really are skipped.
final class StackedZeroRowsTests: XCTestCase {
    /// C = op(A)·B through the stacked entry for one part (A stored [k, m], read transposed), with `zeroK` declared.
    func product(a: [Float], b: [Float], m: Int, n: Int, k: Int, zeroK: Int) -> [UInt32] {
        var c = [Float](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    var part = unroll_sgemm_stacked_part(m: m, trans_a: 1, a: a.baseAddress, lda: m, beta: 0,
                                                         c: c.baseAddress, ldc: n, zero_k: zeroK)
                    let size = unroll_sgemm_stacked_a_size(1, &part, k)
                    let packed = UnsafeMutablePointer<Float>.allocate(capacity: size)
                    defer { packed.deallocate() }
                    unroll_sgemm_pack_stacked_a(1, &part, k, 0, (m + 5) / 6, packed)
                    XCTAssertEqual(unroll_sgemm_stacked_b(1, &part, packed, 0, n, k, 1, b.baseAddress, n, 0, n), 1)
                }
            }
        }
        return c.map(\.bitPattern)
    }

    func testLeadingZeroRowsAreSkippedWithTheSameBits() {
        var random = SeededFloats(state: 91)
        let (m, n, k, zero) = (40, 64, 700, 100)  // two K blocks of 350; the zero rows lie in the first
        let b = random.array(k * n)
        var a = random.array(k * m)
        for i in 0..<(zero * m) { a[i] = 0 }
        let declared = product(a: a, b: b, m: m, n: n, k: k, zeroK: zero)
        XCTAssertEqual(declared, product(a: a, b: b, m: m, n: n, k: k, zeroK: 0), "skipping +0 terms keeps the bits")
        XCTAssertFalse(declared.contains { Float(bitPattern: $0).isNaN })
        // Rows declared zero that are not: skipped (but by the tile that packs each panel of B, which reads all of
        // its K block), so the result differs from the full sum: the declaration is taken at its word.
        var nonzero = a
        for i in 0..<(zero * m) { nonzero[i] = 1 }
        XCTAssertNotEqual(product(a: nonzero, b: b, m: m, n: n, k: k, zeroK: zero),
                          product(a: nonzero, b: b, m: m, n: n, k: k, zeroK: 0))
    }
}
