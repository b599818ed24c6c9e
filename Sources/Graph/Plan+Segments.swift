import Kernels

// Row-parallel segments: the recurrence's kernels split by batch rows, one fork/join per run of kernels.
//
// Row r of a recurrent layer's state at step t depends only on row r of the state at t − 1 and of the input:
// most kernels of a time step are *row-local* (an element-wise sweep over `[rows, columns]`, a product whose
// right operand is a weight, row copies, a bias spread over the rows). A maximal run of row-local kernels over
// the same number of rows is a segment: its rows are split into a fixed number of parts, chosen from the shapes
// alone, and each part runs every kernel of the segment on its own rows, one after the other, with no barrier
// between kernels. Whether a part only reads what it wrote itself is not assumed from the ops' meaning: the pass
// checks the bytes every part touches in every buffer (written regions of different parts never overlap, and
// never overlap what another part reads). Kernels that are not row-local (a bias gradient summed over the rows,
// a weight gradient) are moved after the segment when they share no buffer with the kernels they pass, so that
// the backward recurrence is one segment too. The memory plan keeps every buffer a segment touches alive to the
// segment's end (two parts run different kernels at once, so bytes may not be reused inside a segment), and a
// segment is cut when that would cost more than `Plan.segmentExtraFloats` floats of arena.

extension Plan {
    /// The most floats of arena a segment may add by keeping its buffers alive to its end (4 MiB). Each segment
    /// costs a fork (whose worker, under Dispatch before `WorkerPool`, woke ~90 µs late); at 1 MiB custom-mgu had
    /// 11 segments, at 4 MiB 4, and ran 4.75 against 5.08 ms per step (best of 4 alternating rounds), char-lstm and
    /// gru-long no slower, for 1-4% more arena (256 KiB had been 4-15% slower than 1 MiB).
    static let segmentExtraFloats = 1 << 20
    /// The least work (FLOPs as inspection counts them) a segment needs to pay for its fork and join.
    static let segmentMinimumWork = 200_000
    /// Rows a segment needs before it is split; fewer rows run as ordinary kernels.
    static let segmentMinimumRows = 8

    /// How a kernel of a segment runs on a range of its rows.
    enum RowWork {
        /// The element-wise program of the kernel, over `columns` columns, its operands laid out by `layouts`.
        case elementwise(columns: Int, layouts: [OperandLayout])
        /// A product without transposed left operand, split by its rows.
        case matmul(Product)
        /// `width` zeros per row.
        case fill(Location, width: Int)
        /// A row copy whose `rows` are the segment's rows.
        case copyRows(RowCopy)
        /// One row spread over (or added to) every row.
        case broadcastRow(RowSum)
    }

    /// A run of row-local kernels over the same rows, split into parts that run without a barrier.
    struct Segment {
        var kernels: Range<Int>
        var rows: Int
        var parts: Int
        var work: [RowWork]
        /// The kernels as the parts run them, their addresses filled in before the first run (plan-owned memory).
        var resolved: UnsafeMutableBufferPointer<PartKernel>
        /// Whether `resolved` holds addresses, and the kernels among them with an address outside the arena,
        /// filled in again before every run.
        var isResolved = false
        var externalOffsets: [Int] = []
    }

    /// What a kernel touches when it runs on some of its rows: `rowStride` 0 means every part reads the same
    /// `width` floats (a weight, a bias row, a scalar).
    struct RowAccess {
        var location: Location
        var rowStride: Int
        var width: Int
        var isWrite: Bool
    }

    /// The rows of `count` split into `parts` parts: part `part`'s range.
    static func rowRange(part: Int, of parts: Int, rows: Int) -> Range<Int> {
        (part * rows / parts)..<((part + 1) * rows / parts)
    }

    /// The number of parts for a segment of `rows` rows: fixed by the shape, never by the thread count, so
    /// that every thread count computes the same bits.
    static func parts(forRows rows: Int) -> Int { rows >= segmentMinimumRows ? 2 : 1 }

    /// The row count a kernel is row-local over by its own shape, or `nil` (a kernel that can only join a
    /// segment whose rows are known: a flat fill or copy, or one that is not row-local at all).
    func naturalRows(_ kernel: Kernel) -> Int? {
        switch kernel.work {
        case .elementwise(_, _, let rows, _): rows > 1 ? rows : nil
        case .matmul(let product): kernel.kind != .stackedMatmul && !product.transposeA && product.m > 1 ? product.m : nil
        case .copyRows(let copy): copy.rows > 1 ? copy.rows : nil
        case .rowSum(let sum): sum.broadcasting && sum.rows > 1 ? sum.rows : nil
        default: nil
        }
    }

    /// How `kernel` runs on a range of `rows` rows and what it touches, or `nil` when it is not row-local.
    func rowForm(_ kernel: Kernel, rows: Int) -> (RowWork, [RowAccess])? {
        switch kernel.work {
        case .elementwise(let program, let operands, let kernelRows, let columns):
            var layouts = operands.map(\.layout), width = columns
            if kernelRows != rows {
                // A sweep over whole contiguous tensors is one long row: cut it into `rows` rows.
                guard kernelRows == 1, columns % rows == 0,
                      layouts.allSatisfy({ $0.columnStride == 1 || ($0.rowStride == 0 && $0.columnStride == 0) }) else { return nil }
                width = columns / rows
                layouts = layouts.map { $0.columnStride == 1 ? OperandLayout(rowStride: width, columnStride: 1) : $0 }
            }
            var written = Set<Int>()
            for instruction in program.code where Int(instruction.dst) < program.operandCount { written.insert(Int(instruction.dst)) }
            var accesses: [RowAccess] = []
            for (k, operand) in operands.enumerated() {
                let layout = layouts[k], span = layout.columnStride == 0 ? 1 : (width - 1) * layout.columnStride + 1
                if layout.rowStride == 0 && written.contains(k) { return nil }
                accesses.append(RowAccess(location: operand.location, rowStride: layout.rowStride, width: span,
                                          isWrite: written.contains(k)))
            }
            return (.elementwise(columns: width, layouts: layouts), accesses)
        case .matmul(let product):
            guard kernel.kind != .stackedMatmul, !product.transposeA, product.m == rows else { return nil }
            let bSpan = product.transposeB ? (product.n - 1) * product.ldb + product.k : (product.k - 1) * product.ldb + product.n
            return (.matmul(product), [
                RowAccess(location: product.a, rowStride: product.lda, width: product.k, isWrite: false),
                RowAccess(location: product.b, rowStride: 0, width: bSpan, isWrite: false),
                RowAccess(location: product.c, rowStride: product.ldc, width: product.n, isWrite: true),
            ] + (product.row.map { [RowAccess(location: $0, rowStride: 0, width: product.n, isWrite: false)] } ?? [])
              + (product.outer.map { [RowAccess(location: $0.x, rowStride: $0.ldx, width: 1, isWrite: false),
                                      RowAccess(location: $0.w, rowStride: 0, width: product.n, isWrite: false)] } ?? []))
        case .fill(let location, let count):
            guard count % rows == 0 else { return nil }
            let width = count / rows
            return (.fill(location, width: width), [RowAccess(location: location, rowStride: width, width: width, isWrite: true)])
        case .copyRows(var copy):
            if copy.rows != rows {
                guard copy.rows == 1, copy.width % rows == 0 else { return nil }
                copy.width /= rows
                (copy.rows, copy.sourceStride, copy.targetStride) = (rows, copy.width, copy.width)
            }
            return (.copyRows(copy), [
                RowAccess(location: copy.source, rowStride: copy.sourceStride, width: copy.width, isWrite: false),
                RowAccess(location: copy.target, rowStride: copy.targetStride, width: copy.width, isWrite: true),
            ])
        case .rowSum(let sum):
            guard sum.broadcasting, sum.rows == rows else { return nil }
            return (.broadcastRow(sum), [
                RowAccess(location: sum.source, rowStride: 0, width: sum.width, isWrite: false),
                RowAccess(location: sum.target, rowStride: sum.width, width: sum.width, isWrite: true),
            ])
        case .sharedMatmul, .permute, .general, .parameterGradient:
            return nil
        }
    }

    /// A span of floats a kernel reads or writes in one buffer.
    struct Region {
        var buffer: Int
        var lower: Int, upper: Int
        var isWrite: Bool

        init(_ location: Location, span: Int, isWrite: Bool) {
            (buffer, lower, upper, self.isWrite) = (location.buffer, location.offset, location.offset + Swift.max(span, 1), isWrite)
        }
    }

    /// The spans `kernel` reads and writes (a stacked buffer's rows of one time step, not the whole buffer).
    func regions(_ kernel: Kernel) -> [Region] {
        switch kernel.work {
        case .elementwise(let program, let operands, let rows, let columns):
            var written = Set<Int>()
            for instruction in program.code where Int(instruction.dst) < program.operandCount { written.insert(Int(instruction.dst)) }
            return operands.enumerated().map { k, operand in
                Region(operand.location, span: (rows - 1) * operand.layout.rowStride + (columns - 1) * operand.layout.columnStride + 1,
                       isWrite: written.contains(k))
            }
        case .sharedMatmul(let products, let rowSums):
            return products.map { Kernel.Work.matmul($0) }.flatMap { work in
                regions(Kernel(work: work, kind: .matmul, nodes: [], isBackward: false, flops: 0, reads: [], writes: []))
            } + rowSums.flatMap { sum in
                // A joined sum writes its target directly (no partial).
                var sum = sum
                sum.partial = nil
                return regions(Kernel(work: .rowSum(sum), kind: .copy, nodes: [], isBackward: false, flops: 0, reads: [],
                                      writes: []))
            }
        case .matmul(let p):
            let aRows = p.transposeA ? p.k : p.m, aColumns = p.transposeA ? p.m : p.k
            let bRows = p.transposeB ? p.n : p.k, bColumns = p.transposeB ? p.k : p.n
            return [Region(p.a, span: (aRows - 1) * p.lda + aColumns, isWrite: false),
                    Region(p.b, span: (bRows - 1) * p.ldb + bColumns, isWrite: false),
                    Region(p.c, span: (p.m - 1) * p.ldc + p.n, isWrite: true)]
                + (p.row.map { [Region($0, span: p.n, isWrite: false)] } ?? [])
                + (p.outer.map { [Region($0.x, span: (p.m - 1) * $0.ldx + 1, isWrite: false),
                                  Region($0.w, span: p.n, isWrite: false)] } ?? [])
        case .fill(let location, let count):
            return [Region(location, span: count, isWrite: true)]
        case .copyRows(let copy):
            return [Region(copy.source, span: (copy.rows - 1) * copy.sourceStride + copy.width, isWrite: false),
                    Region(copy.target, span: (copy.rows - 1) * copy.targetStride + copy.width, isWrite: true)]
        case .rowSum(let sum):
            let spread = sum.rows * sum.width
            return [Region(sum.source, span: sum.broadcasting ? sum.width : spread, isWrite: false),
                    Region(sum.target, span: sum.broadcasting ? spread : sum.width, isWrite: true)]
                + (sum.partial.map { [Region($0, span: sum.width, isWrite: true)] } ?? [])
        case .permute(let move):
            let count = move.shape.reduce(1, *)
            return [Region(move.source, span: count, isWrite: false), Region(move.target, span: count, isWrite: true)]
        case .general, .parameterGradient:
            // Whole buffers: these kernels are rare and their views are not worth modelling.
            return kernel.reads.map { Region(Location(buffer: $0, offset: 0), span: Int.max / 2, isWrite: false) }
                + kernel.writes.map { Region(Location(buffer: $0, offset: 0), span: Int.max / 2, isWrite: true) }
        }
    }

    /// Whether two kernels may run in either order (no span that one writes overlaps a span the other touches).
    static func independent(_ first: [Region], _ second: [Region]) -> Bool {
        for x in first {
            for y in second where x.buffer == y.buffer && (x.isWrite || y.isWrite) && x.lower < y.upper && y.lower < x.upper {
                return false
            }
        }
        return true
    }

    /// The span of floats one part touches in one buffer (`part` −1: every part, for shared reads).
    struct Footprint {
        var lower: Int, upper: Int
        var part: Int
        var isWrite: Bool

        func conflicts(with other: Footprint) -> Bool {
            lower < other.upper && other.lower < upper && (isWrite || other.isWrite)
                && (part != other.part || part < 0 || other.part < 0)
        }
    }

    /// A segment being formed: its kernels, the non-row-local kernels moved after it, what its parts touch.
    private struct SegmentBuilder {
        var kernels: [Int] = []
        var work: [RowWork] = []
        var rows = 0
        var parts = 1
        var deferred: [Int] = []
        var footprints: [Int: [Footprint]] = [:]
        var touched: Set<Int> = []
        var flops = 0
        var isBackward = false

        var isEmpty: Bool { kernels.isEmpty }
    }

    /// Finds the row-parallel segments and reorders the schedule around them (before the memory plan).
    func formSegments() {
        let original = steps
        let spans = original.map(regions)
        // Each buffer's last use in the unsegmented schedule: what keeping it alive to a segment's end costs.
        var naturalLast = Array(repeating: -1, count: storage.count)
        for (index, step) in original.enumerated() { for buffer in step.reads + step.writes { naturalLast[buffer] = index } }
        for location in outputLocations.map(\.0) + gradientLocations.compactMap(\.0) { naturalLast[location.buffer] = original.count }

        var order: [Int] = []
        var found: [(start: Int, count: Int, rows: Int, parts: Int, work: [RowWork])] = []
        var current = SegmentBuilder()

        func close() {
            // A product starting from a bias row runs split by rows even alone (the input projection `x·W + b`): it
            // was a copy of the row and the product before, and its parts write their rows contiguously, where
            // `gemm`'s column blocks stride over all of them (gru-long's [16000 × 384] projection with K = 8: 1.3 ms
            // as a segment, 3.3-6 ms split by columns).
            var startsFromRow = false
            if current.kernels.count == 1, case .matmul(let product) = original[current.kernels[0]].work {
                startsFromRow = product.row != nil
            }
            if current.kernels.count >= 2 || startsFromRow, current.flops >= Plan.segmentMinimumWork, current.parts > 1 {
                found.append((order.count, current.kernels.count, current.rows, current.parts, current.work))
            }
            order += current.kernels + current.deferred
            current = SegmentBuilder()
        }

        func extraFloats(_ buffers: Set<Int>, through index: Int) -> Int {
            buffers.reduce(0) { sum, buffer in
                storage[buffer].kind == .arena && naturalLast[buffer] < index ? sum + storage[buffer].count : sum
            }
        }

        /// Adds kernel `index` to the segment if it fits; returns whether it did.
        func tryAdd(_ index: Int) -> Bool {
            let kernel = original[index]
            var rows = current.rows
            if current.isEmpty {
                guard let natural = naturalRows(kernel), Plan.parts(forRows: natural) > 1 else { return false }
                rows = natural
            } else if kernel.isBackward != current.isBackward {
                return false
            }
            guard let (work, accesses) = rowForm(kernel, rows: rows) else { return false }
            // It runs before the kernels moved past the segment: it must not depend on them, nor they on it.
            for moved in current.deferred where !Plan.independent(spans[moved], spans[index]) { return false }
            let parts = Plan.parts(forRows: rows)
            var added: [(buffer: Int, footprint: Footprint)] = []
            for access in accesses {
                let buffer = access.location.buffer
                // Every part would write the same floats.
                if access.isWrite && access.rowStride == 0 { return false }
                var footprints: [Footprint] = []
                if access.rowStride == 0 {
                    footprints.append(Footprint(lower: access.location.offset, upper: access.location.offset + access.width,
                                                part: -1, isWrite: access.isWrite))
                } else {
                    for part in 0..<parts {
                        let range = Plan.rowRange(part: part, of: parts, rows: rows)
                        guard !range.isEmpty else { continue }
                        footprints.append(Footprint(lower: access.location.offset + range.lowerBound * access.rowStride,
                                                    upper: access.location.offset + (range.upperBound - 1) * access.rowStride + access.width,
                                                    part: part, isWrite: access.isWrite))
                    }
                }
                for footprint in footprints {
                    if current.footprints[buffer]?.contains(where: { $0.conflicts(with: footprint) }) == true { return false }
                    if added.contains(where: { $0.buffer == buffer && $0.footprint.conflicts(with: footprint) }) { return false }
                }
                added += footprints.map { (buffer, $0) }
            }
            let buffers = Set(kernel.reads + kernel.writes).subtracting(current.touched)
            if !current.isEmpty && extraFloats(current.touched, through: index) + extraFloats(buffers, through: index) > Plan.segmentExtraFloats {
                return false
            }
            current.kernels.append(index)
            current.work.append(work)
            current.rows = rows
            current.parts = parts
            current.isBackward = kernel.isBackward
            for (buffer, footprint) in added { current.footprints[buffer, default: []].append(footprint) }
            current.flops += kernel.flops
            current.touched.formUnion(buffers)
            return true
        }

        for index in original.indices {
            if tryAdd(index) { continue }
            let kernel = original[index]
            if !current.isEmpty && kernel.isBackward == current.isBackward && naturalRows(kernel) == nil {
                // Not row-local (or a flat kernel that depends on one): move it past the segment; what it reads
                // then lives to the segment's end.
                current.deferred.append(index)
                for buffer in kernel.reads { current.touched.insert(buffer) }
                if extraFloats(current.touched, through: index) <= Plan.segmentExtraFloats { continue }
                current.deferred.removeLast()
                close()
                order.append(index)
                continue
            }
            close()
            if !tryAdd(index) { order.append(index) }
        }
        close()

        steps = order.map { original[$0] }
        segments = found.map { found in
            let resolved = UnsafeMutableBufferPointer<PartKernel>.allocate(capacity: found.count)
            for (offset, work) in found.work.enumerated() {
                resolved[offset] = staticPart(work, kernel: steps[found.start + offset])
            }
            return Segment(kernels: found.start..<(found.start + found.count), rows: found.rows, parts: found.parts,
                           work: found.work, resolved: resolved)
        }
        segmentStarts = Array(repeating: nil, count: steps.count)
        for (k, segment) in segments.enumerated() { segmentStarts[segment.kernels.lowerBound] = k }
    }

    /// Keeps every buffer a segment touches alive to the segment's end (called by the memory plan).
    func extendLifetimesOverSegments() {
        for segment in segments {
            for index in segment.kernels {
                for buffer in steps[index].reads + steps[index].writes {
                    storage[buffer].last = max(storage[buffer].last, segment.kernels.upperBound - 1)
                }
            }
        }
    }
}
