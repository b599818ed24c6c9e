@testable import Graph
import Kernels
import TestSupport
import XCTest

/// A product that starts from a bias row (`C = op(A)·op(B) + row` in every row: a compiled plan's `x·W + b` and a
/// GRU's `h·U + b`) copies the row into each tile of C just before adding onto it, instead of a pass spreading the
/// row over C first. Plans rely on the bits being those of that spread followed by a GEMM with beta = 1 (eager's
/// fl(acc + b)), on every path of the kernel and for every split over threads, and on C not being read.
final class RowAddendGEMMTests: XCTestCase {
    private struct Case {
        let transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int
        let lda: Int, ldb: Int, ldc: Int
        let a: [Float], b: [Float], row: [Float]
        /// C before the call: NaN where the product writes (it must not be read), sentinels in the padding.
        let c: [Float]

        init(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, pad: Int, random: inout SeededFloats) {
            (self.transposeA, self.transposeB, self.m, self.n, self.k) = (transposeA, transposeB, m, n, k)
            lda = (transposeA ? m : k) + pad
            ldb = (transposeB ? k : n) + pad
            ldc = n + pad
            var a = random.array((transposeA ? k : m) * lda)
            // A zero row of op(A) makes every product of that row +0, so a −0 in the row is added to +0.
            for p in 0..<k { a[transposeA ? p * lda : p] = 0 }
            self.a = a
            b = random.array((transposeB ? n : k) * ldb)
            var row = random.array(n)
            for j in stride(from: 0, to: n, by: 5) { row[j] = -0.0 }
            self.row = row
            let width = ldc
            c = (0..<(m * width)).map { $0 % width < n ? .nan : 7 }
        }

        /// The row spread over C, then the product added with beta = 1.
        func reference(alpha: Float) -> [Float] {
            var out = spread()
            unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, 1, &out, ldc)
            return out
        }

        func spread() -> [Float] {
            var out = c
            for i in 0..<m { for j in 0..<n { out[i * ldc + j] = row[j] } }
            return out
        }

        func rowProduct(alpha: Float) -> [Float] {
            var out = c
            unroll_sgemm_row(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, row, &out, ldc)
            return out
        }
    }

    /// Tiny products, one row, few columns, few rows of a transposed B (the unpacked paths), tiles with edge rows
    /// and columns, K of one block and of two and three (the row is added under the first only), every transpose.
    func testRowAddendGivesTheBitsOfSpreadingTheRowFirst() {
        var random = SeededFloats(state: 41)
        let sizes: [(m: Int, n: Int, k: Int)] = [
            (3, 5, 4), (1, 300, 40), (50, 20, 30), (12, 90, 70), (37, 100, 130), (64, 1600, 1), (16, 384, 128),
            (29, 45, 600), (130, 70, 900),
        ]
        for (index, size) in sizes.enumerated() {
            for transposes in 0..<4 {
                let variant = index + transposes
                let test = Case(transposeA: transposes & 1 != 0, transposeB: transposes & 2 != 0, m: size.m, n: size.n,
                                k: size.k, pad: variant % 3 * 3, random: &random)
                let alpha: Float = variant % 2 == 0 ? 1 : -1.5
                let label = "\(size) transposes \(transposes) alpha \(alpha)"
                let expected = test.reference(alpha: alpha)
                XCTAssertFalse(expected.contains { $0.isNaN }, label)
                assertSameBits(test.rowProduct(alpha: alpha), expected, label)
            }
        }
        // Nothing to multiply: C is the row.
        let empty = Case(transposeA: false, transposeB: false, m: 4, n: 9, k: 0, pad: 1, random: &random)
        assertSameBits(empty.rowProduct(alpha: 1), empty.spread(), "K = 0")
    }

    /// Pre-packed op(B) (a recurrent kernel, with A read in place or packed) over uneven column ranges: every
    /// column gets the bits of the pre-packed product onto the row spread first.
    func testPrepackedRightOperandWithARowAddendGivesTheBitsOfSpreadingTheRowFirst() {
        var random = SeededFloats(state: 43)
        let sizes: [(m: Int, n: Int, k: Int)] = [(21, 25, 20), (37, 100, 130), (8, 384, 128), (150, 48, 513), (700, 40, 900)]
        for (index, size) in sizes.enumerated() {
            let test = Case(transposeA: index % 2 == 1, transposeB: index == 2, m: size.m, n: size.n, k: size.k,
                            pad: index % 2 * 2, random: &random)
            let edges = [0, size.n / 3, size.n / 3 + 16, size.n].map { Swift.min($0, size.n) }
            var panels = [Float](repeating: .nan, count: unroll_sgemm_packed_b_size(size.k, size.n))
            unroll_sgemm_pack_b(test.transposeB ? 1 : 0, size.k, size.n, test.b, test.ldb, &panels)
            var out = test.c
            for block in 0..<(edges.count - 1) {
                unroll_sgemm_prepacked_b_row(test.transposeA ? 1 : 0, size.m, size.n, size.k, 1, test.a, test.lda, panels,
                                             edges[block], edges[block + 1], test.row, &out, test.ldc)
            }
            // The pre-packed path gives the blocked path's bits, which the unpacked shortcuts need not share.
            var blocked = test.spread()
            unroll_sgemm_prepacked_b(test.transposeA ? 1 : 0, size.m, size.n, size.k, 1, test.a, test.lda, panels, 0,
                                     size.n, 1, &blocked, test.ldc)
            assertSameBits(out, blocked, "\(size) packed B")
        }
    }

    /// `gemm` and `packedGEMM` split a product over threads by blocks fixed by the shape: with a row addend the
    /// bits are one call's for 1, 2, 3 and 7 threads.
    func testSplitProductsWithARowAddendMatchOneCallForEveryThreadCount() {
        var random = SeededFloats(state: 47)
        let shapes: [(transposeA: Bool, m: Int, n: Int, k: Int)] = [(false, 4096, 160, 1), (true, 70, 300, 600), (false, 16, 384, 128)]
        for shape in shapes {
            let test = Case(transposeA: shape.transposeA, transposeB: false, m: shape.m, n: shape.n, k: shape.k, pad: 0,
                            random: &random)
            let expected = test.rowProduct(alpha: 1)
            var panels = [Float](repeating: .nan, count: unroll_sgemm_packed_b_size(shape.k, shape.n))
            unroll_sgemm_pack_b(0, shape.k, shape.n, test.b, test.ldb, &panels)
            let matrix = PackedMatrix(rows: shape.k, columns: shape.n, isTransposed: false,
                                      storage: PackedStorage(count: panels.count))
            matrix.storage.pointer.update(from: panels, count: panels.count)
            var blocked = test.spread()
            unroll_sgemm_prepacked_b(shape.transposeA ? 1 : 0, shape.m, shape.n, shape.k, 1, test.a, test.lda, panels, 0,
                                     shape.n, 1, &blocked, test.ldc)
            for threads in [1, 2, 3, 7] {
                var out = test.c, packedOut = test.c
                GEMMThreads.withCount(threads) {
                    out.withUnsafeMutableBufferPointer { c in
                        gemm(transposeA: shape.transposeA, transposeB: false, m: shape.m, n: shape.n, k: shape.k,
                             a: test.a, lda: test.lda, b: test.b, ldb: test.ldb, beta: 0, row: test.row,
                             c: c.baseAddress!, ldc: test.ldc)
                    }
                    packedOut.withUnsafeMutableBufferPointer { c in
                        packedGEMM(transposeA: shape.transposeA, m: shape.m, a: test.a, lda: test.lda, packed: matrix,
                                   beta: 0, row: test.row, c: c.baseAddress!, ldc: test.ldc)
                    }
                }
                assertSameBits(out, expected, "\(shape) gemm threads \(threads)")
                assertSameBits(packedOut, blocked, "\(shape) packedGEMM threads \(threads)")
            }
        }
    }
}
