import Dispatch
import Kernels

// Running a row-parallel segment (see `Plan+Segments.swift`): its kernels' addresses are filled in on the
// replaying thread, then each part runs every kernel on its rows with no barrier between kernels, the parts at
// once on two threads. Inside a part the kernels are plain values and raw addresses: no reference counting, no
// exclusivity checks, nothing shared but memory the segment check has split between the parts.

extension Plan {
    /// A kernel of a segment as a part runs it: plain values and addresses, so the parts share nothing that
    /// Swift reference-counts or checks for exclusive access.
    struct PartKernel {
        enum Kind { case elementwise, matmul, packedMatmul, fill, copyRows, broadcastRow }
        var kind: Kind
        var code: UnsafePointer<unroll_ew_instruction>? = nil
        var codeCount = 0, operandCount = 0, registerCount = 0
        var operands: UnsafeMutablePointer<unroll_ew_operand>? = nil
        /// Element-wise: columns; product: `n`; fill, copy and broadcast: the row width.
        var columns = 0
        /// Product: `A`, `B` (or the packed panels), `C`; copy and broadcast: source, target; fill: target.
        var first: UnsafeMutablePointer<Float>? = nil, second: UnsafeMutablePointer<Float>? = nil,
            third: UnsafeMutablePointer<Float>? = nil
        /// Product: the row `C` starts from in every row (a bias), or `nil`.
        var row: UnsafeMutablePointer<Float>? = nil
        /// Product: the outer-product addend's column `x` (`ldx` apart) and row `w`, or `nil` (``Plan/OuterAddend``).
        var outerX: UnsafeMutablePointer<Float>? = nil, outerW: UnsafeMutablePointer<Float>? = nil
        var ldx = 0
        var k = 0, lda = 0, ldb = 0, ldc = 0
        var transposeB = false, accumulating = false
        var sourceStride = 0, targetStride = 0
    }
}

extension Plan {
    /// The parts of a kernel that stay the same from replay to replay: an element-wise program's code and
    /// operand table (copied into plan-owned memory), a product's shape.
    func staticPart(_ work: RowWork, kernel: Kernel) -> PartKernel {
        switch work {
        case .elementwise(let columns, let layouts):
            guard case .elementwise(let program, _, _, _) = kernel.work else { checkFailed("Plan: segment kernel is not element-wise") }
            let code = UnsafeMutableBufferPointer<unroll_ew_instruction>.allocate(capacity: Swift.max(program.code.count, 1))
            _ = code.initialize(from: program.code)
            let operands = UnsafeMutablePointer<unroll_ew_operand>.allocate(capacity: Swift.max(layouts.count, 1))
            segmentAllocations.append(UnsafeMutableRawPointer(code.baseAddress!))
            segmentAllocations.append(UnsafeMutableRawPointer(operands))
            return PartKernel(kind: .elementwise, code: UnsafePointer(code.baseAddress!), codeCount: program.code.count,
                              operandCount: program.operandCount, registerCount: program.registerCount, operands: operands,
                              columns: columns)
        case .matmul(let product):
            return PartKernel(kind: product.packed == nil ? .matmul : .packedMatmul, columns: product.n, ldx: product.outer?.ldx ?? 0,
                              k: product.k, lda: product.lda, ldb: product.ldb, ldc: product.ldc, transposeB: product.transposeB,
                              accumulating: product.accumulating)
        case .fill(_, let width):
            return PartKernel(kind: .fill, columns: width)
        case .copyRows(let copy):
            return PartKernel(kind: .copyRows, columns: copy.width, accumulating: copy.accumulating,
                              sourceStride: copy.sourceStride, targetStride: copy.targetStride)
        case .broadcastRow(let sum):
            return PartKernel(kind: .broadcastRow, columns: sum.width, accumulating: sum.accumulating)
        }
    }

    /// Runs segment `k`: fills in this replay's addresses, then runs its parts, at once on two threads when
    /// there are two. With `times` (profiling), each part adds the nanoseconds each kernel took on its rows to
    /// `times[part * kernels + kernel]`, and writes when it started and ended to `stamps[2 * part]` and `[2 * part + 1]`.
    func runSegment(_ k: Int, times: UnsafeMutablePointer<UInt64>? = nil, stamps: UnsafeMutablePointer<UInt64>? = nil) {
        // The arena never moves, so a kernel's addresses are filled in once; those of inputs, parameters and
        // constants may change from replay to replay and are filled in again each time. (Filling in all of them
        // took ~70 µs per segment of a few hundred kernels, on the replaying thread while the worker waited.)
        if segments[k].isResolved {
            for offset in segments[k].externalOffsets { resolve(segment: k, offset: offset) }
        } else {
            segments[k].externalOffsets = segments[k].work.indices.filter { resolve(segment: k, offset: $0) }
            segments[k].isResolved = true
        }
        let segment = segments[k]
        let resolved = segment.resolved
        let (rows, parts) = (segment.rows, segment.parts)
        guard GEMMThreads.count > 1 else {
            for part in 0..<parts {
                Plan.runPart(resolved, rows: Plan.rowRange(part: part, of: parts, rows: rows), scratch: scratch.buffers[part],
                             times: times.map { $0 + part * resolved.count }, stamps: stamps.map { $0 + 2 * part })
            }
            return
        }
        // Each part only touches its own rows of what the segment writes (checked when the segment was formed),
        // so the parts share the plan's memory without locks.
        let shared = UncheckedSendable(value: (resolved, scratch.buffers, times, stamps))
        forkJoin(iterations: parts) { part in
            let (resolved, scratch, times, stamps) = shared.value
            Plan.runPart(resolved, rows: Plan.rowRange(part: part, of: parts, rows: rows), scratch: scratch[part],
                         times: times.map { $0 + part * resolved.count }, stamps: stamps.map { $0 + 2 * part })
        }
    }

    /// Fills in this replay's addresses for kernel `offset` of segment `k`; returns whether any of them lies
    /// outside the arena (an input, a parameter or a constant, which may move between replays).
    @discardableResult
    private func resolve(segment k: Int, offset: Int) -> Bool {
        let segment = segments[k], resolved = segment.resolved
        var external = false
        func at(_ location: Location) -> UnsafeMutablePointer<Float> {
            if case .arena = storage[location.buffer].kind {} else { external = true }
            return address(location)
        }
        switch segment.work[offset] {
        case .elementwise(_, let layouts):
            guard case .elementwise(_, let operands, _, _) = steps[segment.kernels.lowerBound + offset].work else { return false }
            let table = resolved[offset].operands!
            for (j, operand) in operands.enumerated() {
                table[j] = unroll_ew_operand(base: at(operand.location), row_stride: layouts[j].rowStride,
                                             column_stride: layouts[j].columnStride)
            }
        case .matmul(let product):
            resolved[offset].first = at(product.a)
            resolved[offset].second = product.packed.map { packedOperands[$0].matrix.storage.pointer } ?? at(product.b)
            resolved[offset].third = at(product.c)
            resolved[offset].row = product.row.map(at)
            resolved[offset].outerX = product.outer.map { at($0.x) }
            resolved[offset].outerW = product.outer.map { at($0.w) }
        case .fill(let location, _):
            resolved[offset].third = at(location)
        case .copyRows(let copy):
            resolved[offset].first = at(copy.source)
            resolved[offset].third = at(copy.target)
        case .broadcastRow(let sum):
            resolved[offset].first = at(sum.source)
            resolved[offset].third = at(sum.target)
        }
        return external
    }

    /// Runs every kernel of a segment on `rows`, on this thread, in order; with `times`, adds each kernel's
    /// nanoseconds to `times[kernel]`, and with `stamps` writes when the part started and ended.
    static func runPart(_ kernels: UnsafeMutableBufferPointer<PartKernel>, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>,
                        times: UnsafeMutablePointer<UInt64>? = nil, stamps: UnsafeMutablePointer<UInt64>? = nil) {
        guard !rows.isEmpty else { return }
        let first = rows.lowerBound, count = rows.count
        var start = times == nil ? 0 : PlanProfiler.now()
        stamps?[0] = start
        defer { stamps?[1] = start }
        for (index, kernel) in kernels.enumerated() {
            defer {
                if let times {
                    let end = PlanProfiler.now()
                    times[index] &+= end &- start
                    start = end
                }
            }
            switch kernel.kind {
            case .elementwise:
                unroll_ew_run(kernel.code, kernel.codeCount, kernel.operands, kernel.operandCount, kernel.registerCount,
                              first, rows.upperBound, 0, kernel.columns, scratch)
            case .matmul, .packedMatmul:
                let n = kernel.columns, beta: Float = kernel.accumulating ? 1 : 0
                let a = kernel.first! + first * kernel.lda, c = kernel.third! + first * kernel.ldc
                if kernel.kind == .packedMatmul {
                    let outer = kernel.outerX.map { (x: UnsafePointer($0 + first * kernel.ldx), ldx: kernel.ldx,
                                                      w: UnsafePointer(kernel.outerW!)) }
                    prepackedGEMM(false, count, n, kernel.k, a, kernel.lda, kernel.second!, 0, n, beta, kernel.row, outer, c,
                                  kernel.ldc)
                } else if let row = kernel.row {
                    unroll_sgemm_row(0, kernel.transposeB ? 1 : 0, count, n, kernel.k, 1, a, kernel.lda, kernel.second,
                                     kernel.ldb, row, c, kernel.ldc)
                } else {
                    unroll_sgemm(0, kernel.transposeB ? 1 : 0, count, n, kernel.k, 1, a, kernel.lda, kernel.second,
                                 kernel.ldb, beta, c, kernel.ldc)
                }
            case .fill:
                (kernel.third! + first * kernel.columns).update(repeating: 0, count: count * kernel.columns)
            case .copyRows:
                copyRows(width: kernel.columns, sourceStride: kernel.sourceStride, targetStride: kernel.targetStride,
                         accumulating: kernel.accumulating, rows: rows, source: kernel.first!, target: kernel.third!)
            case .broadcastRow:
                broadcastRow(width: kernel.columns, accumulating: kernel.accumulating, rows: rows, source: kernel.first!,
                             target: kernel.third!)
            }
        }
    }

    /// Copies (or adds) rows `rows` of `width` floats between strided places.
    static func copyRows(width: Int, sourceStride: Int, targetStride: Int, accumulating: Bool, rows: Range<Int>,
                         source: UnsafeMutablePointer<Float>, target: UnsafeMutablePointer<Float>) {
        for row in rows {
            let x = source + row * sourceStride, y = target + row * targetStride
            if accumulating { for i in 0..<width { y[i] += x[i] } } else { y.update(from: x, count: width) }
        }
    }

    /// Writes (or adds) the row `source` into rows `rows` of `target`.
    static func broadcastRow(width: Int, accumulating: Bool, rows: Range<Int>, source: UnsafeMutablePointer<Float>,
                             target: UnsafeMutablePointer<Float>) {
        for row in rows {
            let y = target + row * width
            // `0 + x`, not `x`: a broadcast adds to zeros, which turns −0 into +0.
            if accumulating { for i in 0..<width { y[i] += 0 + source[i] } } else { for i in 0..<width { y[i] = 0 + source[i] } }
        }
    }

    /// Frees what the segments own.
    func releaseSegments() {
        for segment in segments { segment.resolved.deallocate() }
        for allocation in segmentAllocations { allocation.deallocate() }
        segments = []
        segmentAllocations = []
    }
}
