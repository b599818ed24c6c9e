import Kernels

// Cheap products computed where their rows are read, into buffers that stay in cache.
//
// A recurrent layer projects its input for all time steps in one product before the loop (`x·W + b`, time-major,
// each step's rows a view). With few input features that product does almost no arithmetic per float it writes:
// seed-lstm's one-feature projection is 26 MB of gate pre-activations, written to memory in one pass and read back
// from memory one step at a time by each step's recurrent product, which adds into them in place. A forward
// product with a short inner dimension (K ≤ `maximumDeferredK`) is instead cut into row blocks, each run right
// before the first kernel that touches its rows: it joins that step's row-parallel segment, and its rows are
// written just before the step's product adds into them.
//
// When every kernel touches the result within one block's rows (and the caller reads none of it), the blocks get
// buffers of their own, and a block whose buffer's last reader has run before the next block is written hands that
// buffer on (interval colouring over the schedule): a step's gate block is reused by the next step, so it stays in
// cache instead of streaming through memory. The reuse is explicit in the buffer a kernel names, so the segments,
// concurrent groups and the memory plan, which all reason about the regions kernels touch, see it as it is.
// Every float is computed from the same operands by the same kernel in one pass over K (no sum is split), so the
// values are those of the whole product. Runs right after lowering, before products are merged, segments formed
// and memory planned; a block's inputs live on to its last block.

extension Plan {
    /// The largest inner dimension of a product cut into row blocks computed where read: below it the product
    /// writes at memory speed; above it one large product keeps the GEMM's efficiency.
    static let maximumDeferredK = 16

    /// A row block of a product cut where read: its rows, the kernel (index in the schedule with the product in
    /// place) it runs before, and the last kernel that touches its rows.
    private struct RowBlock {
        var rows: Range<Int>
        var position: Int
        var lastTouch: Int
    }

    /// Moves each cheap forward product's rows to where they are first read, as row blocks (see above).
    func computeCheapProductsWhereRead() {
        var index = 0
        while index < steps.count {
            guard let blocks = rowBlocksWhereRead(index) else {
                index += 1
                continue
            }
            let kernel = steps[index]
            guard case .matmul(let product) = kernel.work else { return }
            var blockOfRow = [Int](repeating: 0, count: product.m)
            for (b, block) in blocks.enumerated() { for row in block.rows { blockOfRow[row] = b } }
            let slots = blockBuffers(for: blocks, blockOfRow: blockOfRow, of: product, at: index)
            var inserted: [(position: Int, kernel: Kernel)] = []
            for (b, block) in blocks.enumerated() {
                var piece = product
                piece.m = block.rows.count
                piece.a.offset += block.rows.lowerBound * product.lda
                piece.c.offset += block.rows.lowerBound * product.n
                var blockKernel = kernel
                if let slots { piece.c = Location(buffer: slots[b], offset: 0) }
                blockKernel.work = .matmul(piece)
                blockKernel.writes = [piece.c.buffer]
                blockKernel.flops = 2 * piece.m * product.n * product.k
                inserted.append((block.position, blockKernel))
            }
            if let slots { relocate(product, blocks: blocks, blockOfRow: blockOfRow, into: slots, skipping: index) }
            steps.remove(at: index)
            // From the last insertion point down, so earlier positions stay valid (positions counted with the
            // product still in place, hence − 1). The kernel now at `index` is looked at next.
            for (position, block) in inserted.reversed() { steps.insert(block, at: position - 1) }
        }
    }

    /// For a forward product at `index` worth cutting, its row blocks in schedule order; `nil` to leave it whole.
    private func rowBlocksWhereRead(_ index: Int) -> [RowBlock]? {
        let kernel = steps[index]
        guard case .matmul(let product) = kernel.work, !kernel.isBackward, kernel.kind != .stackedMatmul,
              !product.transposeA, !product.accumulating, product.ldc == product.n, product.m > 1,
              product.k <= Plan.maximumDeferredK, storage[product.c.buffer].kind == .arena else { return nil }
        let (m, n) = (product.m, product.n)
        let output = Region(product.c, span: m * n, isWrite: true)
        let inputs = regions(kernel).filter { !$0.isWrite }
        // The first later kernel to touch each row of the result; the inputs must not change before the last one.
        var firstTouch = [Int?](repeating: nil, count: m)
        var untouched = m
        var later = index + 1
        while untouched > 0 && later < steps.count {
            let touched = regions(steps[later])
            if touched.contains(where: { $0.isWrite && !Plan.independent([$0], inputs) }) { return nil }
            for region in touched where region.buffer == output.buffer && region.lower < output.upper && output.lower < region.upper {
                for row in rows(of: region, in: output, width: n) where firstTouch[row] == nil {
                    firstTouch[row] = later
                    untouched -= 1
                }
            }
            later += 1
        }
        // Rows nothing reads again (the caller reads them back, or nobody does) are computed where they were.
        let before = firstTouch.map { $0 ?? index + 1 }
        var blocks: [RowBlock] = []
        var start = 0
        for row in 1...m where row == m || before[row] != before[start] {
            blocks.append(RowBlock(rows: start..<row, position: before[start], lastTouch: before[start]))
            start = row
        }
        // One block where the product was: nothing gained. Blocks out of order (a later row read first) run in
        // the order of their first readers.
        guard blocks.count > 1, blocks.allSatisfy({ keepsBits(product, rows: $0.rows.count) }) else { return nil }
        return blocks.sorted { $0.position < $1.position }
    }

    /// Whether `rows` rows of `product`, and the parts a segment splits them into, get the bits the whole product
    /// gets: the GEMM's blocked path sums K in the same order for any number of rows, its small-shape paths in
    /// other orders (a single product and its addend are the same everywhere).
    private func keepsBits(_ product: Product, rows: Int) -> Bool {
        if product.k == 1 { return true }
        let (a, b) = (Int32(product.transposeA ? 1 : 0), Int32(product.transposeB ? 1 : 0))
        let parts = Plan.parts(forRows: rows)
        return [product.m, rows, rows / parts].allSatisfy { $0 >= 1 && unroll_sgemm_packs_a(a, b, $0, product.n, product.k, 1) != 0 }
    }

    /// The rows of a `width`-float-row result lying at `output` that `region` touches.
    private func rows(of region: Region, in output: Region, width: Int) -> Range<Int> {
        let lower = Swift.max(region.lower, output.lower) - output.lower
        let upper = Swift.min(region.upper, output.upper) - output.lower
        return (lower / width)..<((upper + width - 1) / width)
    }

    /// One buffer per block, shared by blocks of one size whose lifetimes do not overlap, when every kernel but the
    /// product touches the result within one block's rows and the caller reads none of it; else `nil`.
    private func blockBuffers(for blocks: [RowBlock], blockOfRow: [Int], of product: Product, at index: Int) -> [Int]? {
        let buffer = product.c.buffer
        guard product.c.offset == 0, storage[buffer].count == product.m * product.n,
              !(outputLocations.map(\.0) + gradientLocations.compactMap(\.0)).contains(where: { $0.buffer == buffer })
        else { return nil }
        var blocks = blocks
        let output = Region(product.c, span: product.m * product.n, isWrite: true)
        for (k, kernel) in steps.enumerated() where k != index {
            for region in regions(kernel) where region.buffer == buffer {
                let touched = rows(of: region, in: output, width: product.n)
                guard let first = touched.first, blockOfRow[first] == blockOfRow[touched.last!],
                      region.lower >= output.lower, region.upper <= output.upper else { return nil }
                blocks[blockOfRow[first]].lastTouch = Swift.max(blocks[blockOfRow[first]].lastTouch, k)
            }
        }
        // Interval colouring in schedule order: a block takes over a buffer of its size whose last block is done.
        var slots: [(buffer: Int, count: Int, freeAfter: Int)] = []
        var assigned: [Int] = []
        for block in blocks {
            let count = block.rows.count * product.n
            if let s = slots.firstIndex(where: { $0.count == count && $0.freeAfter < block.position }) {
                slots[s].freeAfter = block.lastTouch
                assigned.append(slots[s].buffer)
            } else {
                storage.append(Buffer(kind: .arena, count: count, isGradient: false, nodes: storage[buffer].nodes))
                slots.append((storage.count - 1, count, block.lastTouch))
                assigned.append(storage.count - 1)
            }
        }
        return assigned
    }

    /// Points every kernel but the product (at `skipping`) at the block buffers instead of the product's buffer.
    private func relocate(_ product: Product, blocks: [RowBlock], blockOfRow: [Int], into slots: [Int], skipping: Int) {
        let buffer = product.c.buffer, n = product.n
        func moved(_ location: Location) -> Location {
            guard location.buffer == buffer else { return location }
            let b = blockOfRow[(location.offset - product.c.offset) / n]
            return Location(buffer: slots[b], offset: location.offset - product.c.offset - blocks[b].rows.lowerBound * n)
        }
        for k in steps.indices where k != skipping {
            guard steps[k].reads.contains(buffer) || steps[k].writes.contains(buffer) else { continue }
            steps[k].work = steps[k].work.relocated(moved)
            let touched = regions(steps[k])
            func named(_ isWrite: Bool) -> [Int] {
                Array(Set(touched.filter { $0.isWrite == isWrite && slots.contains($0.buffer) }.map(\.buffer))).sorted()
            }
            if steps[k].reads.contains(buffer) { steps[k].reads = steps[k].reads.filter { $0 != buffer } + named(false) }
            if steps[k].writes.contains(buffer) { steps[k].writes = steps[k].writes.filter { $0 != buffer } + named(true) }
        }
    }
}

extension Plan.Kernel.Work {
    /// The same work with every location passed through `move`.
    func relocated(_ move: (Plan.Location) -> Plan.Location) -> Plan.Kernel.Work {
        func product(_ p: Plan.Product) -> Plan.Product {
            var p = p
            (p.a, p.b, p.c, p.row) = (move(p.a), move(p.b), move(p.c), p.row.map(move))
            if let outer = p.outer { p.outer = Plan.OuterAddend(x: move(outer.x), ldx: outer.ldx, w: move(outer.w)) }
            return p
        }
        func rowSum(_ s: Plan.RowSum) -> Plan.RowSum {
            var s = s
            (s.source, s.target, s.partial) = (move(s.source), move(s.target), s.partial.map(move))
            return s
        }
        switch self {
        case .elementwise(let program, let operands, let rows, let columns):
            return .elementwise(program, operands: operands.map { Plan.ElementOperand(location: move($0.location), layout: $0.layout) },
                                rows: rows, columns: columns)
        case .matmul(let p): return .matmul(product(p))
        case .sharedMatmul(let products, let sums): return .sharedMatmul(products.map(product), rowSums: sums.map(rowSum))
        case .fill(let location, let count): return .fill(move(location), count: count)
        case .copyRows(var copy):
            (copy.source, copy.target) = (move(copy.source), move(copy.target))
            return .copyRows(copy)
        case .rowSum(let sum): return .rowSum(rowSum(sum))
        case .permute(var permute):
            (permute.source, permute.target) = (move(permute.source), move(permute.target))
            return .permute(permute)
        case .general(var general):
            general.inputs = general.inputs.map { (move($0.location), $0.shape) }
            general.outputs = general.outputs.map { (move($0.location), $0.count, $0.accumulating) }
            return .general(general)
        case .parameterGradient(let slot, let location): return .parameterGradient(slot, move(location))
        }
    }
}
