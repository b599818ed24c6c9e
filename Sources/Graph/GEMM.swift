import Dispatch
import Foundation
import Kernels

/// Raw pointers that the GEMM's worker threads share; each thread writes a disjoint block of `c`.
private struct GEMMOperands: @unchecked Sendable {
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
}

/// Computes `C[m,n] = alpha * op(A) op(B) + beta * C` (row-major), on both cores when it pays.
///
/// `op(A)` is `A` (`[m, k]`) or, with `transposeA`, `Aᵀ` where `A` is stored `[k, m]`; likewise for `B`.
/// The work is split into blocks fixed by the shapes, so the result is bitwise the same on every run and for
/// every thread count (`UNROLL_THREADS`).
func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let flops = 2 * m * n * k
    if flops < 1_000_000 {
        unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        return
    }
    let operands = GEMMOperands(a: a, b: b, c: c)
    // Split N in multiples of 16 (each block packs only its own columns of B); splitting M makes every
    // block pack all of B and measured 2-30% slower, so only a narrow N is split by rows. The blocks depend on
    // the shapes alone, never on the thread count: the kernel picks its path from a block's shape, so blocks
    // sized by the thread count gave other bits with 7 or 16 threads than with 1 or 2.
    let splitN = n >= 64 || n >= m
    let granule = splitN ? 16 : 6
    let total = splitN ? n : m
    // At most 16 blocks of at least 4 granules, their edges spread evenly over the granules; each worker runs
    // a contiguous run of blocks, so two workers get equal halves (a round-robin over 15 blocks left one
    // worker 8 and the other 7).
    let units = (total + granule - 1) / granule
    let blocks = Swift.max(1, Swift.min(16, units / 4))
    @Sendable func edge(_ block: Int) -> Int { Swift.min(total, granule * (block * units / blocks)) }
    let workers = Swift.min(GEMMThreads.count, blocks)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        for block in (worker * blocks / workers)..<((worker + 1) * blocks / workers) {
            let start = edge(block), end = edge(block + 1)
            guard start < end else { continue }
            if splitN {
                let bPart = transposeB ? operands.b + start * ldb : operands.b + start
                unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, end - start, k, alpha,
                             operands.a, lda, bPart, ldb, beta, operands.c + start, ldc)
            } else {
                let aPart = transposeA ? operands.a + start : operands.a + start * lda
                unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, end - start, n, k, alpha,
                             aPart, lda, operands.b, ldb, beta, operands.c + start * ldc, ldc)
            }
        }
    }
}

/// How many threads large matrix products use.
package enum GEMMThreads {
    /// The count set by ``withCount(_:_:)`` on this thread, else the `UNROLL_THREADS` environment variable when
    /// set, else the number of active processors.
    package static var count: Int { forced ?? configured }

    private static let configured: Int = {
        if let text = ProcessInfo.processInfo.environment["UNROLL_THREADS"], let value = Int(text), value >= 1 {
            return value
        }
        return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// A task-local (not global) override, so tests running side by side cannot change each other's count.
    @TaskLocal private static var forced: Int?

    /// Runs `body` with the thread count forced to `threads` (tests of bitwise reproducibility across counts).
    package static func withCount<Result>(_ threads: Int, _ body: () throws -> Result) rethrows -> Result {
        try $forced.withValue(Swift.max(1, threads), operation: body)
    }
}
