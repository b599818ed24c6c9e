import Dispatch
import Foundation
import Kernels

/// Raw pointers that the GEMM's worker threads share; each thread writes a disjoint block of `c`.
private struct GEMMOperands: @unchecked Sendable {
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    /// The row `C` starts from in every row (`unroll_sgemm_row`), or `nil` for `beta * C`.
    let row: UnsafePointer<Float>?
}

/// `unroll_sgemm`, or with `row` `unroll_sgemm_row` (`C = alpha * op(A) op(B) + row` in every row; beta unused).
private func sgemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                   _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
                   _ row: UnsafePointer<Float>?, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if let row {
        unroll_sgemm_row(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, row, c, ldc)
    } else {
        unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
}

/// Computes `C[m,n] = alpha * op(A) op(B) + beta * C` (row-major), on both cores when it pays.
///
/// `op(A)` is `A` (`[m, k]`) or, with `transposeA`, `Aᵀ` where `A` is stored `[k, m]`; likewise for `B`.
/// The work is split into blocks fixed by the shapes, so the result is bitwise the same on every run and for
/// every thread count (`UNROLL_THREADS`). With `row` (`n` floats), `C = alpha * op(A) op(B) + row` in every row
/// instead (beta unused): the GEMM stores each tile onto the row, never reading `C`.
func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, row: UnsafePointer<Float>? = nil, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let flops = 2 * m * n * k
    if flops < 1_000_000 {
        sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, row, c, ldc)
        return
    }
    let operands = GEMMOperands(a: a, b: b, c: c, row: row)
    if m == 1 && !transposeB {
        // The kernel computes every column of a one-row product by the same chain over k, whatever columns it is
        // given with, so the split can follow the thread count without changing a bit; one wide range per thread
        // reads B's rows in long runs (16 narrow blocks touched a new page on every row of B).
        let workers = Swift.min(GEMMThreads.count, Swift.max(1, n / 256))
        let units = (n + 7) / 8
        forkJoin(iterations: workers) { worker in
            let start = Swift.min(n, 8 * (worker * units / workers))
            let end = Swift.min(n, 8 * ((worker + 1) * units / workers))
            guard start < end else { return }
            sgemm(transposeA, false, 1, end - start, k, alpha, operands.a, lda, operands.b + start, ldb, beta,
                  operands.row.map { $0 + start }, operands.c + start, ldc)
        }
        return
    }
    let split = GEMMSplit(m: m, n: n)
    let (splitN, blocks, edge) = (split.byColumns, split.blocks, split.edge)
    let workers = Swift.min(GEMMThreads.count, blocks)
    // A product starting from a row packs op(A) per block: plans run such products (input projections, K small)
    // split by rows in segments, so this path is rare and not worth a row-addend variant of the packed-A kernels.
    if row == nil, split.packsAOnce(transposeA: transposeA, transposeB: transposeB, m: m, k: k, alpha: alpha),
       let packedA = unroll_sgemm_packed_a_buffer(unroll_sgemm_packed_a_size(m, k)) {
        gemmFromPackedA(transposeA: transposeA, transposeB: transposeB, m: m, k: k, alpha: alpha,
                        operands: operands, lda: lda, ldb: ldb, beta: beta, ldc: ldc, packedA: packedA,
                        blocks: blocks, workers: workers, edge: edge)
        return
    }
    forkJoin(iterations: workers) { worker in
        for block in (worker * blocks / workers)..<((worker + 1) * blocks / workers) {
            let start = edge(block), end = edge(block + 1)
            guard start < end else { continue }
            if splitN {
                let bPart = transposeB ? operands.b + start * ldb : operands.b + start
                sgemm(transposeA, transposeB, m, end - start, k, alpha, operands.a, lda, bPart, ldb, beta,
                      operands.row.map { $0 + start }, operands.c + start, ldc)
            } else {
                let aPart = transposeA ? operands.a + start : operands.a + start * lda
                sgemm(transposeA, transposeB, end - start, n, k, alpha, aPart, lda, operands.b, ldb, beta, operands.row,
                      operands.c + start * ldc, ldc)
            }
        }
    }
}

/// How ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` cuts a product into blocks.
///
/// Split N in multiples of 16 (each block packs only its own columns of B); splitting M makes every block pack all
/// of B and measured 2-30% slower, so only a narrow N is split by rows. The blocks depend on the shapes alone,
/// never on the thread count: the kernel picks its path from a block's shape, so blocks sized by the thread count
/// gave other bits with 7 or 16 threads than with 1 or 2.
struct GEMMSplit {
    let byColumns: Bool
    let blocks: Int
    let edge: @Sendable (Int) -> Int

    init(m: Int, n: Int) {
        byColumns = n >= 64 || n >= m
        let granule = byColumns ? 16 : 6
        let total = byColumns ? n : m
        // At most 16 blocks of at least 4 granules, their edges spread evenly over the granules; each worker runs
        // a contiguous run of blocks, so two workers get equal halves (a round-robin over 15 blocks left one
        // worker 8 and the other 7).
        let units = (total + granule - 1) / granule
        let blocks = Swift.max(1, Swift.min(16, units / 4))
        self.blocks = blocks
        edge = { block in Swift.min(total, granule * (block * units / blocks)) }
    }

    /// Whether the column blocks all take the blocked path, so that `op(A)` can be packed once for all of them.
    func packsAOnce(transposeA: Bool, transposeB: Bool, m: Int, k: Int, alpha: Float) -> Bool {
        byColumns && blocks > 1 && (0..<blocks).allSatisfy { block in
            edge(block) >= edge(block + 1) || unroll_sgemm_packs_a(transposeA ? 1 : 0, transposeB ? 1 : 0, m,
                                                                   edge(block + 1) - edge(block), k, alpha) != 0
        }
    }
}

/// The column blocks of ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` from one packing of
/// `op(A)` into `packedA` (the calling thread's buffer), instead of every block packing all of it again (for a
/// weight gradient `Hᵀ·dZ` over all time steps that is megabytes per block). Bitwise the same as the blocks
/// through `unroll_sgemm`, which the caller has checked take the blocked path.
private func gemmFromPackedA(transposeA: Bool, transposeB: Bool, m: Int, k: Int, alpha: Float,
                             operands: GEMMOperands, lda: Int, ldb: Int, beta: Float, ldc: Int,
                             packedA: UnsafeMutablePointer<Float>, blocks: Int, workers: Int,
                             edge: @Sendable (Int) -> Int) {
    packLeftOperands([PackedLeft(transposeA: transposeA, m: m, a: operands.a, lda: lda, packed: packedA)], k: k,
                     workers: workers)
    let packed = UncheckedSendable(value: packedA)
    forkJoin(iterations: workers) { worker in
        let run = (worker * blocks / workers)..<((worker + 1) * blocks / workers)
        let written = withBlockEdges(run, edge) { edges in
            unroll_sgemm_prepacked_a_blocks(transposeB ? 1 : 0, m, k, alpha, packed.value, operands.b, ldb, edges,
                                            run.count, beta, operands.c, ldc)
        }
        guard written == 0 else { return }
        for block in run {
            let start = edge(block), end = edge(block + 1)
            guard start < end else { continue }
            unroll_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, end - start, k, alpha, operands.a, lda,
                         transposeB ? operands.b + start * ldb : operands.b + start, ldb, beta, operands.c + start, ldc)
        }
    }
}

/// Calls `body` with the column edges of a worker's contiguous `run` of blocks (`run.count + 1` of them), the
/// form the kernels' `_blocks` entry points take: they run the K blocks outermost over all the run's column
/// blocks, so each K block of packed `op(A)` is read from L2 by every block rather than streamed from L3 per block.
/// Each block's bits are those of its own call, so how the runs fall (the thread count) changes none.
private func withBlockEdges<Result>(_ run: Range<Int>, _ edge: (Int) -> Int,
                                    _ body: (UnsafePointer<Int>) -> Result) -> Result {
    withUnsafeTemporaryAllocation(of: Int.self, capacity: run.count + 1) { edges in
        for (i, block) in (run.lowerBound...run.upperBound).enumerated() { edges[i] = edge(block) }
        return body(UnsafePointer(edges.baseAddress!))
    }
}

/// A left operand to pack whole (`unroll_sgemm_pack_a`'s layout) into `packed`.
private struct PackedLeft {
    var transposeA: Bool, m: Int
    var a: UnsafePointer<Float>, lda: Int
    var packed: UnsafeMutablePointer<Float>
}

/// Packs every `op(Aᵢ)` into its place, the 6-row panels of all of them shared out over up to `workers` threads
/// when there are 64K floats or more (packing is a copy: no bit depends on who packs which panel).
private func packLeftOperands(_ lefts: [PackedLeft], k: Int, workers: Int) {
    let panels = lefts.map { ($0.m + 5) / 6 }, totalPanels = panels.reduce(0, +)
    let floats = lefts.reduce(0) { $0 + unroll_sgemm_packed_a_size($1.m, k) }
    let packers = floats >= 65_536 ? Swift.min(workers, totalPanels) : 1
    let shared = UncheckedSendable(value: (lefts, panels))
    forkJoin(iterations: packers) { part in
        let (lefts, panels) = shared.value
        let first = part * totalPanels / packers, last = (part + 1) * totalPanels / packers
        var start = 0
        for (i, left) in lefts.enumerated() {
            let lower = Swift.max(first, start) - start, upper = Swift.min(last, start + panels[i]) - start
            if lower < upper {
                unroll_sgemm_pack_a(left.transposeA ? 1 : 0, left.m, k, left.a, left.lda, 6 * lower,
                                    Swift.min(left.m, 6 * upper), left.packed)
            }
            start += panels[i]
        }
    }
}

/// Whether a product is large enough to lead a ``sharedGEMM(transposeB:n:k:b:ldb:lefts:)``: where
/// ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` splits it into column blocks from `op(A)`
/// packed once (alpha 1). Smaller products and row sums reading the same right operand join such a product.
func sharesRightOperandPacking(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int) -> Bool {
    2 * m * n * k >= 1_000_000 && GEMMSplit(m: m, n: n).packsAOnce(transposeA: transposeA, transposeB: transposeB,
                                                                     m: m, k: k, alpha: 1)
}

/// One left operand of ``sharedGEMM(transposeB:n:k:b:ldb:lefts:)``: `C = op(A)·op(B) + beta·C`, `C` `[m, n]`; with
/// no `a`, one row of ones (`m` 1): `C` gets the column sums of `op(B)` (a bias gradient).
struct SharedGEMMLeft {
    var transposeA: Bool, m: Int
    var a: UnsafePointer<Float>?, lda: Int
    var beta: Float
    var c: UnsafeMutablePointer<Float>, ldc: Int
    /// Leading rows of K in which `op(A)` is zero (skipped with the same bits; see `unroll_sgemm_stacked_part`).
    var zeroRows = 0
}

/// Products that share their right operand, `Cᵢ = op(Aᵢ)·op(B) + βᵢ·Cᵢ`, their rows stacked into one packed `op(A)`
/// (`unroll_sgemm_stacked_b`): each K x N block of `op(B)` is read and packed once for all of them, on every core,
/// rather than once per product (a recurrent layer's weight and bias gradients all read the stacked gate
/// gradients), and a one-row product or a row sum fills the padding of a larger product's last 6-row panel. A
/// product that ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`` runs from `op(A)` packed once
/// (``sharesRightOperandPacking(transposeA:transposeB:m:n:k:)``) gets the bits it has there; the others are sums in
/// another order than their own path's (the last bits may differ). Every thread count gives the same bits: the
/// column blocks depend on `n` alone, and each thread runs its run of them with the K blocks outermost.
func sharedGEMM(transposeB: Bool, n: Int, k: Int, b: UnsafePointer<Float>, ldb: Int, lefts: [SharedGEMMLeft]) {
    // Larger products first, so that the small ones share the last panels instead of splitting a large one's.
    let order = lefts.indices.sorted { lefts[$0].m > lefts[$1].m || (lefts[$0].m == lefts[$1].m && $0 < $1) }
    let parts = order.map { i in
        unroll_sgemm_stacked_part(m: lefts[i].m, trans_a: lefts[i].transposeA ? 1 : 0, a: lefts[i].a, lda: lefts[i].lda,
                                  beta: lefts[i].beta, c: lefts[i].c, ldc: lefts[i].ldc, zero_k: lefts[i].zeroRows)
    }
    let rows = lefts.reduce(0) { $0 + Swift.max(0, $1.m) }
    let floats = parts.withUnsafeBufferPointer { unroll_sgemm_stacked_a_size($0.count, $0.baseAddress, k) }
    guard rows > 0, n > 0, let packed = unroll_sgemm_packed_a_buffer(floats) else {
        for left in lefts { separateProduct(left, transposeB: transposeB, n: n, k: k, b: b, ldb: ldb, columns: 0..<n) }
        return
    }
    let split = GEMMSplit(m: 1, n: n)
    let blocks = split.blocks, workers = Swift.min(GEMMThreads.count, blocks), edge = split.edge
    let panels = (rows + 5) / 6, packers = floats >= 65_536 ? Swift.min(workers, panels) : 1
    let state = UncheckedSendable(value: (parts, lefts, packed, b))
    forkJoin(iterations: packers) { part in
        let (parts, _, packed, _) = state.value
        parts.withUnsafeBufferPointer {
            unroll_sgemm_pack_stacked_a($0.count, $0.baseAddress, k, part * panels / packers,
                                        (part + 1) * panels / packers, packed)
        }
    }
    forkJoin(iterations: workers) { worker in
        let (parts, lefts, packed, b) = state.value
        let run = (worker * blocks / workers)..<((worker + 1) * blocks / workers)
        let written = withBlockEdges(run, edge) { edges in
            parts.withUnsafeBufferPointer {
                unroll_sgemm_stacked_b_blocks($0.count, $0.baseAddress, packed, transposeB ? 1 : 0, n, k, 1, b, ldb,
                                              edges, run.count)
            }
        }
        guard written == 0 else { return }
        for block in run {
            let start = edge(block), end = edge(block + 1)
            guard start < end else { continue }
            for left in lefts {
                separateProduct(left, transposeB: transposeB, n: n, k: k, b: b, ldb: ldb, columns: start..<end)
            }
        }
    }
}

/// Columns `columns` of one left operand's product on the calling thread, without the stacked packing (out of
/// memory for it): `unroll_sgemm`, or for a row of ones the column sums in row order.
private func separateProduct(_ left: SharedGEMMLeft, transposeB: Bool, n: Int, k: Int, b: UnsafePointer<Float>,
                             ldb: Int, columns: Range<Int>) {
    guard let a = left.a else {
        for j in columns {
            var sum: Float = 0
            for row in 0..<k { sum += transposeB ? b[j * ldb + row] : b[row * ldb + j] }
            left.c[j] = left.beta == 0 ? sum : sum + left.beta * left.c[j]
        }
        return
    }
    unroll_sgemm(left.transposeA ? 1 : 0, transposeB ? 1 : 0, left.m, columns.count, k, 1, a, left.lda,
                 transposeB ? b + columns.lowerBound * ldb : b + columns.lowerBound, ldb, left.beta,
                 left.c + columns.lowerBound, left.ldc)
}

/// How many threads large matrix products use.
package enum GEMMThreads {
    /// The count set by ``withCount(_:_:)`` on this thread, else the `UNROLL_THREADS` environment variable when
    /// set, else the number of active processors.
    package static var count: Int { forced ?? configured }

    /// The count from `UNROLL_THREADS` or the processors, ignoring ``withCount(_:_:)``: what the worker pool is sized to.
    static var configuredCount: Int { configured }

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
