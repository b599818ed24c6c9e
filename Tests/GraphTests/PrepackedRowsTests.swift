import Kernels
import TestSupport
import XCTest

/// The pre-packed-B GEMM reads a small non-transposed A in place instead of packing it into panels, with its own
/// row blocking. Compiled plans rely on the bits of a product not depending on how its rows and columns are split,
/// so both ways must give the same bits, edge rows and columns and accumulation (beta != 0) included.
final class PrepackedRowsTests: XCTestCase {
    private func product(inPlace: Int32, m: Int, n: Int, k: Int, alpha: Float, beta: Float, a: [Float], lda: Int,
                         packed: [Float], columns: Range<Int>, c: [Float]) -> [Float] {
        var out = c
        unroll_sgemm_prepacked_b_choosing(inPlace, 0, m, n, k, alpha, a, lda, packed, columns.lowerBound,
                                          columns.upperBound, beta, &out, n)
        return out
    }

    func testRowsReadInPlaceGiveThePackedPathsBits() {
        var random = SeededFloats(state: 7)
        let rows = Array(1...20) + [24, 31, 32, 64]
        let shapes: [(n: Int, k: Int)] = [(1, 3), (7, 1), (16, 64), (17, 5), (40, 700), (130, 33), (48, 300)]
        var cases = 0
        for (index, m) in rows.enumerated() {
            for (shapeIndex, shape) in shapes.enumerated() {
                let (n, k) = shape
                let variant = index + shapeIndex
                let lda = k + variant % 3
                let a = (0..<(m * lda)).map { _ in random.next() }
                let b = (0..<(k * n)).map { _ in random.next() }
                let c = (0..<(m * n)).map { _ in random.next() }
                var packed = [Float](repeating: 0, count: unroll_sgemm_packed_b_size(k, n))
                unroll_sgemm_pack_b(0, k, n, b, n, &packed)
                let alpha: Float = variant % 2 == 0 ? 1 : -1.5
                let beta: Float = [0, 1, 0.5][variant % 3]
                let columns = variant % 4 == 0 ? 0..<n : (n / 3)..<max(n / 3 + 1, n - n / 5)
                let packedA = product(inPlace: 0, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, lda: lda,
                                      packed: packed, columns: columns, c: c)
                let inPlace = product(inPlace: 1, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, lda: lda,
                                      packed: packed, columns: columns, c: c)
                for i in 0..<m {
                    for j in 0..<n {
                        let index = i * n + j
                        XCTAssertEqual(inPlace[index].bitPattern, packedA[index].bitPattern,
                                       "m \(m) n \(n) k \(k) beta \(beta) row \(i) column \(j)")
                        guard columns.contains(j) else {
                            XCTAssertEqual(inPlace[index].bitPattern, c[index].bitPattern, "column \(j) written")
                            continue
                        }
                        var sum = 0.0, magnitude = 0.0
                        for p in 0..<k {
                            let term = Double(a[i * lda + p]) * Double(b[p * n + j])
                            sum += term
                            magnitude += abs(term)
                        }
                        let expected = Double(alpha) * sum + Double(beta) * Double(c[index])
                        let bound = 1e-6 * Double(k + 4) * (abs(Double(alpha)) * magnitude + abs(Double(c[index])))
                        XCTAssertEqual(Double(inPlace[index]), expected, accuracy: bound, "m \(m) n \(n) k \(k)")
                    }
                }
                cases += 1
            }
        }
        XCTAssertEqual(cases, rows.count * shapes.count)
    }
}
