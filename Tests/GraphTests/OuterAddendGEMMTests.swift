import Kernels
import TestSupport
import XCTest

/// `unroll_sgemm_prepacked_b_outer`: a product from packed panels stored onto the outer-product addend x·wᵀ (+ a row)
/// gives the bits of that K = 1 product run first and the product then accumulated into it (beta = 1), and writes
/// C without reading it.
final class OuterAddendGEMMTests: XCTestCase {
    func testOuterAddendGivesTheBitsOfTheOneColumnProductThenTheAccumulation() {
        var random = SeededFloats(state: 17)
        // Rows read in place and packed (M·K above the in-place limit), ragged rows and columns, two K blocks; the
        // one-column reference takes the blocked path (64 x 1600, 1400 x 48) and the small-shape one (the others).
        let shapes: [(m: Int, n: Int, k: Int)] = [(2, 37, 5), (13, 40, 9), (64, 1600, 400), (7, 96, 600), (1400, 48, 400)]
        for (m, n, k) in shapes {
            let ldx = 3, ldc = n + 5
            let a = random.array(m * k), b = random.array(k * n)
            let x = random.array(m * ldx), w = random.array(n), row = random.array(n)
            let packed = UnsafeMutablePointer<Float>.allocate(capacity: unroll_sgemm_packed_b_size(k, n))
            defer { packed.deallocate() }
            unroll_sgemm_pack_b(0, k, n, b, n, packed)
            for withRow in [true, false] {
                for (n0, n1) in [(0, n), (16, n - 3)] where n0 < n1 {
                    // Reference: x·wᵀ (+ row) into C, then the product added into it.
                    var expected = [Float](repeating: 9, count: m * ldc)
                    expected.withUnsafeMutableBufferPointer { c in
                        if withRow {
                            unroll_sgemm_row(0, 0, m, n, 1, 1, x, ldx, w, n, row, c.baseAddress, ldc)
                        } else {
                            unroll_sgemm(0, 0, m, n, 1, 1, x, ldx, w, n, 0, c.baseAddress, ldc)
                        }
                        unroll_sgemm_prepacked_b(0, m, n, k, 1, a, k, packed, n0, n1, 1, c.baseAddress, ldc)
                    }
                    var got = [Float](repeating: .nan, count: m * ldc)
                    got.withUnsafeMutableBufferPointer { c in
                        unroll_sgemm_prepacked_b_outer(0, m, n, k, 1, a, k, packed, n0, n1, x, ldx, w,
                                                       withRow ? row : nil, c.baseAddress, ldc)
                    }
                    // Only columns [n0, n1) are compared (and written): C was NaN, never read.
                    let columns = { (c: [Float]) in (0..<m).flatMap { i in (n0..<n1).map { c[i * ldc + $0] } } }
                    assertSameBits(columns(got), columns(expected), "M \(m) N \(n) K \(k) row \(withRow) [\(n0), \(n1))")
                    let outside = (0..<m).flatMap { i in (0..<ldc).filter { !(n0..<n1).contains($0) }.map { got[i * ldc + $0] } }
                    XCTAssertTrue(outside.allSatisfy(\.isNaN), "nothing written outside the columns")
                }
            }
        }
    }

    func testKnownValues() {
        // [1 2]·[[1 0] [0 1]] + [1 2]ᵀ·[10 20] + [100 200]
        let b: [Float] = [1, 0, 0, 1]
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: unroll_sgemm_packed_b_size(2, 2))
        defer { packed.deallocate() }
        unroll_sgemm_pack_b(0, 2, 2, b, 2, packed)
        var c = [Float](repeating: .nan, count: 4)
        unroll_sgemm_prepacked_b_outer(0, 2, 2, 2, 1, [1, 2, 3, 4], 2, packed, 0, 2, [1, 2], 1, [10, 20], [100, 200], &c, 2)
        let expected: [Float] = [111, 222, 123, 244]  // 1 + 10 + 100, 2 + 20 + 200, 3 + 20 + 100, 4 + 40 + 200
        XCTAssertEqual(c, expected)
    }
}
