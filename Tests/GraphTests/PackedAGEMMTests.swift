@testable import Graph
import Kernels
import TestSupport
import XCTest

/// A product split into column blocks packs `op(A)` once (`unroll_sgemm_pack_a`) and runs every block from those
/// panels (`unroll_sgemm_prepacked_a`). Compiled plans rely on a product's bits not depending on the split or the
/// thread count, so the blocks must give exactly `unroll_sgemm`'s bits for the whole product.
final class PackedAGEMMTests: XCTestCase {
    private struct Shape {
        let transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int
    }

    /// Operands with padded row strides (`pad` extra floats per row) and a `C` whose padding columns must survive.
    private struct Operands {
        let shape: Shape, lda: Int, ldb: Int, ldc: Int, a: [Float], b: [Float], c: [Float]

        init(_ shape: Shape, pad: Int, beta: Float, random: inout SeededFloats) {
            self.shape = shape
            let (m, n, k) = (shape.m, shape.n, shape.k)
            lda = (shape.transposeA ? m : k) + pad
            ldb = (shape.transposeB ? k : n) + pad
            ldc = n + pad
            a = random.array((shape.transposeA ? k : m) * lda)
            b = random.array((shape.transposeB ? n : k) * ldb)
            c = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : random.array(m * ldc)
        }

        func reference(alpha: Float, beta: Float) -> [Float] {
            var out = c
            unroll_sgemm(shape.transposeA ? 1 : 0, shape.transposeB ? 1 : 0, shape.m, shape.n, shape.k, alpha, a, lda,
                         b, ldb, beta, &out, ldc)
            return out
        }

        /// Packs `op(A)` in calls over `panelCuts` (row edges, multiples of 6) and computes the columns in calls
        /// over `columnCuts` (or, `inOneCall`, in one call over those column blocks, K blocks outermost), into a
        /// buffer first filled with NaN so that an unwritten float shows.
        func prepacked(alpha: Float, beta: Float, panelCuts: [Int], columnCuts: [Int], inOneCall: Bool = false)
            -> [Float] {
            let (m, n, k) = (shape.m, shape.n, shape.k)
            var packed = [Float](repeating: .nan, count: unroll_sgemm_packed_a_size(m, k))
            let rowEdges = [0] + panelCuts + [m]
            for index in 0..<(rowEdges.count - 1) {
                unroll_sgemm_pack_a(shape.transposeA ? 1 : 0, m, k, a, lda, rowEdges[index], rowEdges[index + 1],
                                    &packed)
            }
            var out = c
            let columnEdges = [0] + columnCuts + [n]
            if inOneCall {
                let written = unroll_sgemm_prepacked_a_blocks(shape.transposeB ? 1 : 0, m, k, alpha, packed, b, ldb,
                                                              columnEdges, columnEdges.count - 1, beta, &out, ldc)
                XCTAssertEqual(written, 1)
                return out
            }
            for index in 0..<(columnEdges.count - 1) {
                let written = unroll_sgemm_prepacked_a(shape.transposeB ? 1 : 0, m, k, alpha, packed, b, ldb,
                                                       columnEdges[index], columnEdges[index + 1], beta, &out, ldc)
                XCTAssertEqual(written, 1)
            }
            return out
        }
    }

    /// Rows and columns off the 6 x 16 tiles, K within one block of 512 and over two and three, every transpose,
    /// alpha 1 and -1.5, beta 0 (C full of NaN), 1 and 0.5, padded strides; packing and columns split unevenly.
    func testPrepackedAGivesTheBitsOfOneCall() {
        var random = SeededFloats(state: 11)
        let sizes: [(m: Int, n: Int, k: Int)] = [
            (21, 25, 20), (23, 40, 33), (30, 64, 5), (37, 100, 130), (53, 33, 600), (145, 70, 40), (150, 48, 513),
            (64, 30, 1100), (97, 130, 257),
        ]
        var cases = 0
        for (index, size) in sizes.enumerated() {
            for transposes in 0..<4 {
                let shape = Shape(transposeA: transposes & 1 != 0, transposeB: transposes & 2 != 0, m: size.m,
                                  n: size.n, k: size.k)
                let variant = index + transposes
                let alpha: Float = variant % 2 == 0 ? 1 : -1.5
                let beta: Float = [0, 1, 0.5][variant % 3]
                XCTAssertEqual(unroll_sgemm_packs_a(Int32(transposes & 1), Int32(transposes >> 1), size.m, size.n, size.k, alpha), 1,
                               "\(size) must take the blocked path for the bits to compare")
                let operands = Operands(shape, pad: variant % 3 * 3, beta: beta, random: &random)
                let expected = operands.reference(alpha: alpha, beta: beta)
                let panels = (size.m + 5) / 6
                let panelCuts = [6 * (panels / 3), 6 * (panels / 3 + 1)]
                let columnCuts = [size.n / 3, Swift.min(size.n, size.n / 3 + 16 * (variant % 2)), size.n - size.n / 5].sorted()
                let got = operands.prepacked(alpha: alpha, beta: beta, panelCuts: panelCuts, columnCuts: columnCuts)
                assertSameBits(got, expected, "\(shape) alpha \(alpha) beta \(beta)")
                let inOneCall = operands.prepacked(alpha: alpha, beta: beta, panelCuts: panelCuts,
                                                   columnCuts: columnCuts, inOneCall: true)
                assertSameBits(inOneCall, expected, "\(shape) alpha \(alpha) beta \(beta), blocks in one call")
                cases += 1
            }
        }
        XCTAssertEqual(cases, sizes.count * 4)
    }

    /// Where `unroll_sgemm` takes a shortcut (a single row, few columns, few rows of a transposed B) it packs no A,
    /// and the pre-packed path would not give its bits: the predicate must say so.
    func testSkinnyShapesDoNotPackA() {
        XCTAssertEqual(unroll_sgemm_packs_a(0, 0, 1, 500, 500, 1), 0)
        XCTAssertEqual(unroll_sgemm_packs_a(0, 1, 20, 500, 500, 1), 0)
        XCTAssertEqual(unroll_sgemm_packs_a(0, 0, 100, 24, 500, 1), 0)
        XCTAssertEqual(unroll_sgemm_packs_a(1, 0, 100, 6, 500, 1), 0)
        XCTAssertEqual(unroll_sgemm_packs_a(0, 0, 100, 500, 500, 0), 0)
        XCTAssertEqual(unroll_sgemm_packs_a(0, 1, 21, 500, 500, 1), 1)
    }

    /// `gemm` splits N into up to 16 blocks and packs A once for all of them (on several threads when it is
    /// large): the bits equal one `unroll_sgemm` call over the whole product for every thread count.
    func testSplitProductMatchesOneCallForEveryThreadCount() {
        var random = SeededFloats(state: 23)
        let shapes = [
            Shape(transposeA: true, transposeB: false, m: 70, n: 300, k: 600),
            Shape(transposeA: false, transposeB: false, m: 130, n: 200, k: 90),
            Shape(transposeA: true, transposeB: true, m: 45, n: 1000, k: 33),
            Shape(transposeA: false, transposeB: true, m: 33, n: 150, k: 1030),
            Shape(transposeA: true, transposeB: false, m: 400, n: 260, k: 200),
        ]
        for (index, shape) in shapes.enumerated() {
            let beta: Float = index % 2 == 0 ? 0 : 1
            let operands = Operands(shape, pad: index % 2 * 5, beta: beta, random: &random)
            let expected = operands.reference(alpha: 1, beta: beta)
            for threads in [1, 2, 3, 7] {
                var out = operands.c
                GEMMThreads.withCount(threads) {
                    out.withUnsafeMutableBufferPointer { c in
                        gemm(transposeA: shape.transposeA, transposeB: shape.transposeB, m: shape.m, n: shape.n,
                             k: shape.k, a: operands.a, lda: operands.lda, b: operands.b, ldb: operands.ldb,
                             beta: beta, c: c.baseAddress!, ldc: operands.ldc)
                    }
                }
                assertSameBits(out, expected, "\(shape) threads \(threads)")
            }
        }
    }
}
