import Kernels

// Products cut over their inner dimension: a weight gradient summed over all time steps is small (an MGU's
// Σₜ hₜᵀ·dfₜ is [128 × 128]) with a long K ([3200]). `gemm` splits such a product into two column blocks of 64, and
// a concurrent group runs it whole on one thread; neither lets both cores share a product in pieces that a
// late thread can still take. Here the product is cut where the kernel already cuts K (its KC blocks of at most
// `unroll_sgemm_max_single_pass_k()` rows, split evenly): each block's product goes to its own partial, and the
// partials are added to C in block order. The kernel adds each block's sum to C the same way (with alpha 1, its
// store `fma(1, sum, c)` is one rounded addition), so the result is bitwise `gemm`'s, whoever computes which block.

/// A product `C = op(A)·op(B) + beta·C` cut into one piece per K block of the blocked GEMM, with the same bits as
/// ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``.
struct GEMMKSplit {
    let transposeA: Bool, transposeB: Bool
    let m: Int, n: Int, k: Int
    /// The number of K blocks, and the rows of each but the last (the kernel's even split).
    let blocks: Int, blockSize: Int

    /// The most floats of C that a split product may have: the partial of one block then stays in the L2 cache
    /// beside the packed operands, and a wider product keeps both cores busy through its column blocks.
    static let maximumOutput = 65_536
    /// The most floats of partials a split product may need (a longer K is better left to the column split than
    /// reduced through megabytes of partials).
    static let maximumPartials = 1 << 20

    /// The split of this product, or `nil` when it spans one K block, is too wide, or when `gemm` would not give
    /// it the blocked kernel's bits (a skinny shape, a split by rows) that the pieces reproduce.
    init?(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int) {
        let single = unroll_sgemm_max_single_pass_k()
        let blocks = (k + single - 1) / single
        guard m > 1, n > 1, blocks >= 2, m * n <= Self.maximumOutput, blocks * m * n <= Self.maximumPartials else {
            return nil
        }
        let size = (k + blocks - 1) / blocks
        func blocked(_ rows: Int) -> Bool {
            unroll_sgemm_packs_a(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, rows, 1) != 0
        }
        // gemm() runs a product of under 1M FLOPs as one call; a larger one in column blocks, each on the blocked
        // path (from op(A) packed once) when packsAOnce holds or there is one block.
        let split = GEMMSplit(m: m, n: n)
        guard blocked(k), blocked(size), blocked(k - (blocks - 1) * size),
              2 * m * n * k < 1_000_000 || (split.byColumns
                  && (split.blocks == 1 || split.packsAOnce(transposeA: transposeA, transposeB: transposeB, m: m, k: k,
                                                            alpha: 1)))
        else { return nil }
        (self.transposeA, self.transposeB, self.m, self.n, self.k) = (transposeA, transposeB, m, n, k)
        (self.blocks, blockSize) = (blocks, size)
    }

    /// Floats of partials: one `m × n` product per block.
    var partialCount: Int { blocks * m * n }

    /// Computes block `block`'s product, `op(A)[:, K block]·op(B)[K block, :]`, into its partial, `partials +
    /// block·m·n` (`[m, n]`, row-major), on this thread.
    func multiplyBlock(_ block: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                       partials: UnsafeMutablePointer<Float>) {
        let start = block * blockSize, rows = Swift.min(k, start + blockSize) - start
        let aBlock = transposeA ? a + start * lda : a + start, bBlock = transposeB ? b + start : b + start * ldb
        // The block's operands (2 × 234 KB for an MGU's) were written long before: fetched all at once they come
        // in parallel; the packing loops alone waited for them (kbench-style test, cold: 1385 -> 1140 µs).
        if transposeA { unroll_prefetch_rows(aBlock, rows, m, lda) } else { unroll_prefetch_rows(aBlock, m, rows, lda) }
        if transposeB { unroll_prefetch_rows(bBlock, n, rows, ldb) } else { unroll_prefetch_rows(bBlock, rows, n, ldb) }
        unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, rows, 1, aBlock, lda, bBlock, ldb, 0,
                     partials + block * m * n, n)
    }

    /// Adds the partials to C in block order (`C` overwritten by the first unless `accumulating`): the kernel's
    /// order of additions, so C gets `gemm`'s bits.
    func reduce(partials: UnsafePointer<Float>, accumulating: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for block in 0..<blocks {
            let partial = partials + block * m * n
            for row in 0..<m {
                let source = partial + row * n, target = c + row * ldc
                if block == 0 && !accumulating {
                    target.update(from: source, count: n)
                } else {
                    for column in 0..<n { target[column] += source[column] }
                }
            }
        }
    }
}
