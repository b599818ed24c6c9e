import Dispatch
import Graph
import Kernels

/// The machine's arithmetic peak right now: a pure fused-multiply-add loop on the GEMM's threads.
///
/// Measured in the same run as a benchmark, because these cores' speed drifts by tens of percent from hour
/// to hour: a fraction of this peak compares across runs where raw GFLOP/s do not.
enum FMAPeak {
    /// GFLOP/s of the loop on `threads` threads at once (the best of several short rounds), or `nil` when
    /// the CPU has no AVX2 + FMA kernels (there is no peak the GEMM could reach).
    static func measure(threads: Int = GEMMThreads.count, rounds: Int = 12,
                        iterationsPerRound: Int = 1_000_000) -> Double? {
        guard unroll_has_avx2_fma() != 0 else { return nil }
        let clock = ContinuousClock()
        let flops = UnsafeMutableBufferPointer<Double>.allocate(capacity: threads)
        defer { flops.deallocate() }
        let shared = SharedResults(flops)
        var best = 0.0
        for _ in 0..<rounds {
            let elapsed = clock.measure {
                DispatchQueue.concurrentPerform(iterations: threads) { part in
                    shared.values[part] = unroll_fma_loop(iterationsPerRound)
                }
            }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            best = max(best, flops.reduce(0, +) / seconds * 1e-9)
        }
        return best
    }

    /// One result slot per thread; each thread writes only its own.
    private struct SharedResults: @unchecked Sendable {
        let values: UnsafeMutableBufferPointer<Double>
        init(_ values: UnsafeMutableBufferPointer<Double>) { self.values = values }
    }
}
