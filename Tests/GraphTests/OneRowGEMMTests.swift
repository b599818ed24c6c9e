@testable import Graph
import Kernels
import TestSupport
import XCTest

/// A one-row product with a non-transposed right operand (an LSTM's input-weight gradient `xᵀ·D` with one input
/// feature: m = 1, n = 4 gates x units, k = batch x steps) streams B's rows and is split over the threads by the
/// thread count. Compiled plans and replays rely on its bits not depending on that count or on the split.
final class OneRowGEMMTests: XCTestCase {
    /// `C = alpha·op(A)·B + beta·C` through ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``.
    private func product(transposeA: Bool, n: Int, k: Int, lda: Int, ldb: Int, alpha: Float, beta: Float,
                         a: [Float], b: [Float], c: [Float], threads: Int) -> [Float] {
        var out = c
        GEMMThreads.withCount(threads) {
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { c in
                        gemm(transposeA: transposeA, transposeB: false, m: 1, n: n, k: k, alpha: alpha,
                             a: a.baseAddress!, lda: lda, b: b.baseAddress!, ldb: ldb, beta: beta,
                             c: c.baseAddress!, ldc: n)
                    }
                }
            }
        }
        return out
    }

    /// Against a double-precision reference (the kernel tests' bound, 4e-7 (k + 4) Σ|a b|), and bitwise the same
    /// for 1, 2, 3 and 7 threads and for the columns computed in uneven ranges by separate calls.
    func testOneRowProductIsAccurateAndBitwiseStable() {
        var random = SeededFloats(state: 5)
        let cases: [(transposeA: Bool, n: Int, k: Int, alpha: Float, beta: Float)] = [
            (true, 1600, 4096, 1, 0), (true, 1030, 997, -1.5, 0.5), (false, 777, 2048, 1, 1), (true, 3000, 700, 1, 1),
        ]
        for item in cases {
            let (n, k) = (item.n, item.k)
            let lda = item.transposeA ? 3 : k + 2, ldb = n + 5
            let a = random.array(item.transposeA ? k * lda : lda), b = random.array(k * ldb), c = random.array(n)
            let label = "transposeA \(item.transposeA) n \(n) k \(k)"
            let one = product(transposeA: item.transposeA, n: n, k: k, lda: lda, ldb: ldb, alpha: item.alpha,
                              beta: item.beta, a: a, b: b, c: c, threads: 1)
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let term = Double(item.transposeA ? a[p * lda] : a[p]) * Double(b[p * ldb + j])
                    sum += term
                    magnitude += abs(term)
                }
                let expected = Double(item.alpha) * sum + Double(item.beta) * Double(c[j])
                let bound = 4e-7 * Double(k + 4) * (abs(Double(item.alpha)) * magnitude + abs(Double(item.beta * c[j])))
                XCTAssertLessThanOrEqual(abs(Double(one[j]) - expected), bound, "\(label) column \(j)")
            }
            for threads in [2, 3, 7] {
                let other = product(transposeA: item.transposeA, n: n, k: k, lda: lda, ldb: ldb, alpha: item.alpha,
                                    beta: item.beta, a: a, b: b, c: c, threads: threads)
                XCTAssertEqual(other.map(\.bitPattern), one.map(\.bitPattern), "\(label), \(threads) threads")
            }
            for width in [8, 13, 100, 1024] {
                var pieces = c
                for start in stride(from: 0, to: n, by: width) {
                    let end = Swift.min(n, start + width)
                    b.withUnsafeBufferPointer { b in
                        pieces.withUnsafeMutableBufferPointer { out in
                            unroll_sgemm(item.transposeA ? 1 : 0, 0, 1, end - start, k, item.alpha, a, lda,
                                         b.baseAddress! + start, ldb, item.beta, out.baseAddress! + start, n)
                        }
                    }
                }
                XCTAssertEqual(pieces.map(\.bitPattern), one.map(\.bitPattern),
                               "\(label), columns in ranges of \(width)")
            }
        }
    }
}
