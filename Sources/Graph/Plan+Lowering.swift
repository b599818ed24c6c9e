import Kernels

// Lowering a tape's records to a plan's kernels: views become offsets, element-wise groups become one sweep
// forward and one backward (from the derivative formulas in Gradients.swift), matrix products become GEMMs
// (a weight's per-step gradient products one stacked GEMM, as eager backward does), sums over leading axes
// (bias gradients), transposes and concatenations strided loops in the arena, and the rare ops run through the
// eager tensor kernels. This file is long because the forward and backward lowering of every
// op kind belong together: each backward case mirrors a forward one.

struct PlanLowering {
    typealias Location = Plan.Location

    /// One term `leftᵀ · right` of a stacked weight-gradient product: `rows` rows of each operand.
    struct StackedOperands {
        var left: Location, leftColumns: Int
        var right: Location, rightColumns: Int
        var rows: Int
    }

    typealias Record = Tape.Record

    let plan: Plan
    let records: [Record]
    let inputIndices: [Int: Int]
    let fusing: Bool
    var grouping: PlanGrouping
    var value: [Location?]
    var gradient: [Location?]
    var parameterSlots: [ObjectIdentifier: Int] = [:]
    /// Products `aᵀ·g` owed to a leaf, summed as one product when the backward sweep reaches the leaf.
    var deferred: [Int: [StackedOperands]] = [:]
    var isBackward = false
    /// Where a value (key `2 · node`) or gradient (`2 · node + 1`) goes so that the row-stacked operands of a
    /// weight's `Σₜ aₜᵀ gₜ` already lie side by side in one buffer, in the order the product reads them.
    var stackedPlacement: [Int: (location: Location, count: Int)] = [:]
    /// The stack buffers (left, right) of a leaf's stacked product, when the layout above was planned.
    /// A side is `nil` when its operands already lie one after another in one buffer (read in place).
    var stackBuffers: [Int: (left: Location?, right: Location?)] = [:]
    /// The stacked products lowered, by leaf: what the layout is planned from.
    var stackedProducts: [Int: [StackedOperands]] = [:]
    /// Nodes whose gradients the caller reads: their buffers are never shared with another node's gradient.
    var requestedGradients: Set<Int> = []
    /// Contiguous slices whose gradient is the matching region of their source's gradient (nothing to copy).
    var slicesInPlace: Set<Int> = []
    /// Gradient spans (a location and a float count) already handed on to an input (a second input must get a copy).
    var passedThrough: Set<[Int]> = []
    /// Buffers holding regions that are also sums' gradients, read again later (by stacked products): whatever
    /// takes one of them over must only read it (`onlyReads`).
    var sharedRegionBuffers: Set<Int> = []
    /// Uses so far of each parameter record as a right operand, by `2 · record + (transposed ? 1 : 0)`.
    var rightOperandUses: [Int: Int] = [:]
    var packedSlots: [Int: Int] = [:]
    /// Additions run as their product's GEMM accumulating into the addend's place, and those products' additions.
    var accumulations: [Int: Accumulation] = [:]
    var accumulatedProducts: [Int: Int] = [:]
    /// Values whose gradient is written region by region by their slices, where each one's fill would have run,
    /// and the slices whose region got its first contribution stored (`Plan+RegionGradients.swift`).
    var regionSources: Set<Int> = []
    var regionFillAt: [Int: Int] = [:]
    var storedRegions: Set<Int> = []
    /// Sources whose gradient their column slices' sweeps store with nothing zeroed first, where a fill would have
    /// run, and the column slices stored so far.
    var columnFillAt: [Int: Int] = [:]
    var storedColumns: Set<Int> = []

    init(plan: Plan, records: [Record], inputs: [Int], fusing: Bool) {
        self.plan = plan
        self.records = records
        self.inputIndices = Dictionary(uniqueKeysWithValues: inputs.enumerated().map { ($1, $0) })
        self.fusing = fusing
        value = Array(repeating: nil, count: records.count)
        gradient = Array(repeating: nil, count: records.count)
        grouping = PlanGrouping(records: records, fusing: fusing)
    }

    // MARK: Buffers

    mutating func newBuffer(_ kind: Plan.Buffer.Kind, count: Int, isGradient: Bool, node: Int) -> Location {
        let key = 2 * node + (isGradient ? 1 : 0)
        if kind == .arena, let placed = stackedPlacement[key], placed.count == count {
            stackedPlacement.removeValue(forKey: key)
            plan.storage[placed.location.buffer].nodes.append(node)
            return placed.location
        }
        plan.storage.append(Plan.Buffer(kind: kind, count: count, isGradient: isGradient, nodes: [node]))
        return Location(buffer: plan.storage.count - 1, offset: 0)
    }

    mutating func emit(_ work: Plan.Kernel.Work, kind: PlanKernel.Kind, nodes: [Int], flops: Int = 0,
                       reads: [Location], writes: [Location], addend: Int? = nil, addendIsRow: Bool = false) {
        plan.steps.append(Plan.Kernel(work: work, kind: kind, nodes: nodes, isBackward: isBackward, flops: flops,
                                      reads: reads.map(\.buffer), writes: writes.map(\.buffer), addend: addend,
                                      addendIsRow: addendIsRow))
    }

    func shape(_ index: Int) -> [Int] { records[index].value.shape }
    func count(_ index: Int) -> Int { records[index].value.count }

    /// The packed operand for a product whose right operand is record `index` (if any) in orientation
    /// `transposed`, with `m` rows. Eager tapes pack a parameter from its second use as a right operand on
    /// (`Tape.packedOperand`); the plan packs the same products so that both give the same bits.
    mutating func packedOperand(_ index: Int?, transposed: Bool, rows m: Int) -> Int? {
        guard let index, case .parameter = records[index].op, records[index].value.rank == 2,
              m * records[index].value.count >= PackedOperandCache.minimumVolume,
              case .parameter(let slot) = plan.storage[value[index]!.buffer].kind else { return nil }
        let key = 2 * index + (transposed ? 1 : 0)
        rightOperandUses[key, default: 0] += 1
        guard rightOperandUses[key]! > 1 else { return nil }
        if let existing = packedSlots[key] { return existing }
        let shape = records[index].value.shape
        let k = transposed ? shape[1] : shape[0], n = transposed ? shape[0] : shape[1]
        let storage = PackedStorage(count: unroll_sgemm_packed_b_size(k, n))
        plan.packedOperands.append(Plan.PackedOperand(parameter: slot, transposed: transposed,
                                                      matrix: PackedMatrix(rows: k, columns: n, isTransposed: transposed,
                                                                           storage: storage)))
        packedSlots[key] = plan.packedOperands.count - 1
        return packedSlots[key]
    }

    // MARK: Whole plan

    /// Plans, from a first lowering's stacked products, where a second lowering puts their operands: each
    /// operand that a whole arena buffer holds goes to its rows of one stack buffer per side, unless that side's
    /// operands already lie one after another (a time step's rows each of one gradient: read where they lie).
    mutating func placeStackedOperands(_ products: [Int: [StackedOperands]], firstPass storage: [Plan.Buffer]) {
        for (leaf, list) in products.sorted(by: { $0.key < $1.key }) {
            let totalRows = list.reduce(0) { $0 + $1.rows }
            let leftInPlace = PlanLowering.areConsecutive(list.map { ($0.left, $0.rows) }, columns: list[0].leftColumns)
            let rightInPlace = PlanLowering.areConsecutive(list.map { ($0.right, $0.rows) }, columns: list[0].rightColumns)
            let left = leftInPlace ? nil : newBuffer(.arena, count: totalRows * list[0].leftColumns, isGradient: false, node: leaf)
            let right = rightInPlace ? nil : newBuffer(.arena, count: totalRows * list[0].rightColumns, isGradient: true, node: leaf)
            stackBuffers[leaf] = (left, right)
            var row = 0
            for product in list {
                for (location, columns, stack) in [(product.left, product.leftColumns, left), (product.right, product.rightColumns, right)] {
                    guard let stack else { continue }
                    let buffer = storage[location.buffer], count = product.rows * columns
                    guard buffer.kind == .arena, location.offset == 0, buffer.count == count else { continue }
                    let key = 2 * buffer.nodes[0] + (buffer.isGradient ? 1 : 0)
                    guard stackedPlacement[key] == nil else { continue }
                    stackedPlacement[key] = (Location(buffer: stack.buffer, offset: row * columns), count)
                }
                row += product.rows
            }
        }
    }

    /// Whether `operands` (locations and row counts, `columns` floats a row) lie one after another in one buffer.
    static func areConsecutive(_ operands: [(location: Location, rows: Int)], columns: Int) -> Bool {
        var next = operands[0].location
        for operand in operands {
            guard operand.location == next else { return false }
            next.offset += operand.rows * columns
        }
        return true
    }

    mutating func lower(outputs: [Int], root: Int?, gradients requested: [Int]) {
        let needed = neededRecords(from: outputs + requested + (root.map { [$0] } ?? []))
        let pinned = Set(outputs + requested + (root.map { [$0] } ?? []))
        grouping.group(needed: needed, pinned: pinned)
        findAccumulations(needed: needed, pinned: pinned)
        if root != nil && fusing { storeTranscendentalsForBackward(needed: needed) }
        let order = grouping.unitOrder(needed: needed)
        for unit in order { lowerForward(unit) }
        plan.outputLocations = outputs.map { (value[$0]!, shape($0)) }
        guard let root else {
            plan.gradientLocations = requested.map { (nil, shape($0)) }
            return
        }
        isBackward = true
        requestedGradients = Set(requested)
        regionSources = regionSources(needed: needed)
        plan.constants.append(Tensor(shape: shape(root), repeating: 1))
        gradient[root] = newBuffer(.constant(plan.constants.count - 1), count: count(root), isGradient: true, node: root)
        for unit in order.reversed() { lowerBackward(unit) }
        fillUnstoredRegions()
        plan.gradientLocations = requested.map { (gradient[$0], shape($0)) }
    }

    /// The records the outputs depend on.
    func neededRecords(from roots: [Int]) -> [Bool] {
        var needed = Array(repeating: false, count: records.count)
        for root in roots { needed[root] = true }
        for index in stride(from: records.count - 1, through: 0, by: -1) where needed[index] {
            for input in records[index].inputs { needed[input] = true }
        }
        return needed
    }

    // MARK: Forward

    mutating func lowerForward(_ unit: PlanGrouping.Unit) {
        switch unit {
        case .group(let g): lowerGroupForward(g)
        case .record(let index): lowerRecordForward(index)
        }
    }

    mutating func lowerRecordForward(_ index: Int) {
        let record = records[index]
        let inputs = record.inputs
        switch record.op {
        case .parameter:
            let parameter = record.parameter!
            let slot = parameterSlots[ObjectIdentifier(parameter)] ?? {
                plan.parameters.append(parameter)
                return plan.parameters.count - 1
            }()
            parameterSlots[ObjectIdentifier(parameter)] = slot
            value[index] = newBuffer(.parameter(slot), count: record.value.count, isGradient: false, node: index)
        case .constant, .variable:
            if let k = inputIndices[index] {
                value[index] = newBuffer(.input(k), count: record.value.count, isGradient: false, node: index)
            } else {
                plan.constants.append(record.value)
                value[index] = newBuffer(.constant(plan.constants.count - 1), count: record.value.count, isGradient: false, node: index)
            }
        case .reshape, .stopGradient:
            value[index] = value[inputs[0]]
        case .slice(let axis, let range):
            let source = shape(inputs[0])
            let outer = source[..<axis].reduce(1, *), inner = source[(axis + 1)...].reduce(1, *)
            var at = value[inputs[0]]!
            at.offset += range.lowerBound * inner
            if outer == 1 {
                value[index] = at
            } else if grouping.isStridedView(index) {
                value[index] = at  // read in place by the sweeps that consume it, row stride = the source's row
            } else {
                let target = newBuffer(.arena, count: count(index), isGradient: false, node: index)
                value[index] = target
                emit(.copyRows(Plan.RowCopy(source: at, target: target, rows: outer, width: range.count * inner,
                                            sourceStride: source[axis] * inner, targetStride: range.count * inner,
                                            accumulating: false)),
                     kind: .copy, nodes: [index], reads: [at], writes: [target])
            }
        case .matmul(let transposeA, let transposeB):
            let a = shape(inputs[0]), b = shape(inputs[1])
            let m = transposeA ? a[1] : a[0], k = transposeA ? a[0] : a[1], n = transposeB ? b[0] : b[1]
            if let sum = accumulatedProducts[index] {
                // Run later, into its addend's place, by the addition; packed as eager packs it at this point.
                accumulations[sum]!.packed = packedOperand(inputs[1], transposed: transposeB, rows: m)
                return
            }
            let target = newBuffer(.arena, count: m * n, isGradient: false, node: index)
            value[index] = target
            let packed = k == 0 ? nil : packedOperand(inputs[1], transposed: transposeB, rows: m)
            if k == 0 || isZeroConstant(inputs[0]) {
                // No terms, or a zero left operand: the GEMM would store +0 everywhere.
                emit(.fill(target, count: m * n), kind: .fill, nodes: [index], reads: [], writes: [target])
            } else {
                emit(.matmul(Plan.Product(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                          a: value[inputs[0]]!, lda: a[1], b: value[inputs[1]]!, ldb: b[1], c: target,
                                          ldc: n, accumulating: false, packed: packed)),
                     kind: .matmul, nodes: [index], flops: 2 * m * n * k,
                     reads: [value[inputs[0]]!, value[inputs[1]]!], writes: [target])
            }
        case .unary, .binary, .affine, .clamp:
            checkFailed("Plan: element-wise record \(index) outside a group")
        case .checkpoint(let function):
            let target = newBuffer(.arena, count: count(index), isGradient: false, node: index)
            value[index] = target
            // The body runs as the eager forward runs it (untaped, or its own compiled plan); several outputs
            // are flattened and joined.
            emitGeneral({ inputs in function.forward(inputs) }, inputs: inputs, output: target, count: count(index), accumulating: false, nodes: [index])
        case .transpose, .concat, .sum, .logSoftmax, .softmax, .gather, .sparseMatmul:
            let op = record.op
            let target = newBuffer(.arena, count: count(index), isGradient: false, node: index)
            value[index] = target
            if case .sum(let axes) = op, let (rows, width) = leadingReduction(shape(inputs[0]), to: kept(shape(inputs[0]), axes)) {
                emitRowSum(from: value[inputs[0]]!, to: target, rows: rows, width: width, accumulating: false,
                           broadcasting: false, nodes: [index])
                return
            }
            if case .transpose(let permutation) = op {
                emitPermute(from: value[inputs[0]]!, to: target, shape: shape(inputs[0]), permutation: permutation,
                            accumulating: false, node: index)
                return
            }
            if case .concat(let axis) = op {
                // Each input's rows go to their columns of the result: strided copies, nothing allocated.
                let outShape = shape(index), inner = outShape[(axis + 1)...].reduce(1, *)
                let outer = outShape[..<axis].reduce(1, *)
                var start = 0
                for input in inputs {
                    let width = shape(input)[axis] * inner
                    var region = target
                    region.offset += start
                    emit(.copyRows(Plan.RowCopy(source: value[input]!, target: region, rows: outer, width: width,
                                                sourceStride: width, targetStride: outShape[axis] * inner,
                                                accumulating: false)),
                         kind: .copy, nodes: [index], reads: [value[input]!], writes: [target])
                    start += width
                }
                return
            }
            let outputShape = shape(index)
            let body: ([Tensor]) -> Tensor = { inputs in
                switch op {
                case .transpose(let permutation): inputs[0].transposed(permutation: permutation)
                case .concat(let axis): Tensor.concatenate(inputs, along: axis)
                case .sum(let axes):
                    inputs[0].sum(alongAxes: axes, keepingDimensions: true).reshaped(to: outputShape)
                case .logSoftmax(let axis): inputs[0].logSoftmax(alongAxis: axis)
                case .softmax(let axis): inputs[0].softmax(alongAxis: axis)
                case .gather(let indices): Node(inputs[0]).gatheringRows(indices).value
                case .sparseMatmul(let matrix): matrix.product(inputs[0])
                default: checkFailed("Plan: \(op.name) is not a general kernel")
                }
            }
            emitGeneral(body, inputs: inputs, output: target, count: count(index), accumulating: false,
                        nodes: [index])
        }
    }

    /// The rows and row width of reducing `shape` to `target` when only leading axes are summed (the case
    /// `Tensor.sum(toShape:)` adds whole rows for); `nil` otherwise.
    func leadingReduction(_ shape: [Int], to target: [Int]) -> (rows: Int, width: Int)? {
        guard target != shape, target.count <= shape.count else { return nil }
        let padded = [Int](repeating: 1, count: shape.count - target.count) + target
        let inner = padded.count - (padded.firstIndex { $0 != 1 } ?? padded.count)
        guard padded.suffix(inner) == shape.suffix(inner) else { return nil }
        let width = shape.suffix(inner).reduce(1, *)
        return (width == 0 ? 0 : shape.reduce(1, *) / width, width)
    }

    /// `shape` with `axes` set to 1 (what a sum over `axes` keeps).
    func kept(_ shape: [Int], _ axes: [Int]) -> [Int] {
        var kept = shape
        for axis in axes { kept[axis] = 1 }
        return kept
    }

    /// Emits `target (+)= source` summed (or, `broadcasting`, spread back) over leading axes, in the arena.
    mutating func emitRowSum(from source: Location, to target: Location, rows: Int, width: Int, accumulating: Bool,
                             broadcasting: Bool, nodes: [Int]) {
        var partial: Location?
        if accumulating && !broadcasting {
            partial = newBuffer(.arena, count: width, isGradient: true, node: nodes.last!)
        }
        emit(.rowSum(Plan.RowSum(source: source, target: target, rows: rows, width: width, accumulating: accumulating,
                                 broadcasting: broadcasting, partial: partial)),
             kind: .copy, nodes: nodes, flops: rows * width,
             reads: [source] + (accumulating ? [target] : []), writes: [target] + (partial.map { [$0] } ?? []))
    }

    /// Emits a transpose of a `shape` tensor by `permutation` from `source` into (or onto) `target`.
    mutating func emitPermute(from source: Location, to target: Location, shape: [Int], permutation: [Int],
                              accumulating: Bool, node: Int) {
        emit(.permute(Plan.Permute(source: source, target: target, shape: shape, permutation: permutation,
                                   accumulating: accumulating)),
             kind: .copy, nodes: [node], reads: [source] + (accumulating ? [target] : []), writes: [target])
    }

    mutating func emitGeneral(_ body: @escaping ([Tensor]) -> Tensor, inputs: [Int], output: Location, count: Int,
                              accumulating: Bool, nodes: [Int], extra: [(Location, [Int])] = []) {
        emitGeneral({ [body($0)] }, inputs: inputs, outputs: [(output, count, accumulating)], nodes: nodes, extra: extra)
    }

    mutating func emitGeneral(_ body: @escaping ([Tensor]) -> [Tensor?], inputs: [Int],
                              outputs: [(location: Location, count: Int, accumulating: Bool)], nodes: [Int],
                              extra: [(Location, [Int])] = []) {
        let arguments = inputs.map { (location: value[$0]!, shape: shape($0)) } + extra.map { (location: $0.0, shape: $0.1) }
        emit(.general(Plan.General(inputs: arguments, outputs: outputs, body: body)), kind: .general, nodes: nodes,
             reads: arguments.map(\.location) + outputs.filter(\.accumulating).map(\.location),
             writes: outputs.map(\.location))
    }

    // MARK: Backward

    /// Where to put a contribution to node `index`'s gradient, and whether to add it to what is there. A caller
    /// `storing` a sweep's value may be handed a region of a region source's gradient to store into (as `g + 0`).
    mutating func gradientTarget(_ index: Int, storing: Bool = false) -> (Location, accumulating: Bool) {
        if let location = gradient[index] { return (location, true) }
        if let slice = regionSliceOperand(ofSum: index) {
            // The sum's gradient is its slice's: written where the slice's region lies, nothing copied there.
            let (region, _) = gradientTarget(slice, storing: true)
            gradient[index] = region
            sharedRegionBuffers.insert(region.buffer)
            plan.storage[region.buffer].nodes.append(index)
            return (region, false)
        }
        // A contiguous slice (a time step of the input projection) adds into its region of the source's
        // gradient directly, so its own backward has nothing to copy.
        if case .slice(let axis, let range) = records[index].op, !requestedGradients.contains(index),
           records[records[index].inputs[0]].needsGradient {
            let sourceShape = shape(records[index].inputs[0])
            if sourceShape[..<axis].reduce(1, *) == 1 {
                let source = records[index].inputs[0], isRegion = regionSources.contains(source)
                var region = isRegion ? regionSourceGradient(source) : zeroedGradient(source)
                region.offset += range.lowerBound * sourceShape[(axis + 1)...].reduce(1, *)
                gradient[index] = region
                slicesInPlace.insert(index)
                if isRegion && storing {
                    storedRegions.insert(index)
                    return (region, false)
                }
                return (region, true)
            }
        }
        let location = newBuffer(.arena, count: count(index), isGradient: true, node: index)
        gradient[index] = location
        return (location, false)
    }

    mutating func lowerBackward(_ unit: PlanGrouping.Unit) {
        switch unit {
        case .group(let g): lowerGroupBackward(g)
        case .record(let index): lowerRecordBackward(index)
        }
    }

    mutating func lowerRecordBackward(_ index: Int) {
        let record = records[index]
        if let products = deferred.removeValue(forKey: index) { emitStackedProduct(products, into: index) }
        guard let grad = gradient[index] else { return }
        let inputs = record.inputs
        if record.op.isLeaf {
            if case .parameter = record.op, record.needsGradient, case .parameter(let slot) = plan.storage[value[index]!.buffer].kind {
                emit(.parameterGradient(slot, grad), kind: .parameterGradient, nodes: [index], reads: [grad], writes: [])
            }
            return
        }
        guard record.needsGradient else { return }
        switch record.op {
        case .matmul(let transposeA, let transposeB):
            for k in 0..<2 where records[inputs[k]].needsGradient {
                let (left, right, transposeLeft, transposeRight) = Op.matmulGradient(input: k, transposeA: transposeA,
                                                                                      transposeB: transposeB)
                func operand(_ which: MatmulOperand) -> (Location, [Int]) {
                    switch which {
                    case .gradient: (grad, shape(index))
                    case .a: (value[inputs[0]]!, shape(inputs[0]))
                    case .b: (value[inputs[1]]!, shape(inputs[1]))
                    }
                }
                let (l, ls) = operand(left), (r, rs) = operand(right)
                if transposeLeft && !transposeRight && records[inputs[k]].op.isLeaf {
                    deferred[inputs[k], default: []].append(StackedOperands(left: l, leftColumns: ls[1], right: r,
                                                                            rightColumns: rs[1], rows: ls[0]))
                    continue
                }
                let m = transposeLeft ? ls[1] : ls[0], kk = transposeLeft ? ls[0] : ls[1], n = transposeRight ? rs[0] : rs[1]
                let (target, accumulating) = gradientTarget(inputs[k])
                let rightIndex = right == .gradient ? nil : inputs[right == .a ? 0 : 1]
                let packed = packedOperand(rightIndex, transposed: transposeRight, rows: m)
                emit(.matmul(Plan.Product(transposeA: transposeLeft, transposeB: transposeRight, m: m, n: n, k: kk,
                                          a: l, lda: ls[1], b: r, ldb: rs[1], c: target, ldc: n, accumulating: accumulating,
                                          packed: packed)),
                     kind: .matmul, nodes: [index], flops: 2 * m * n * kk,
                     reads: [l, r] + (accumulating ? [target] : []), writes: [target])
            }
        case .reshape:
            if passThrough(grad, from: index, to: inputs[0]) { break }
            let (target, accumulating) = gradientTarget(inputs[0])
            emitCopy(from: grad, to: target, count: count(index), accumulating: accumulating, node: index)
        case .slice(let axis, let range):
            if slicesInPlace.contains(index) { break }
            let source = shape(inputs[0])
            let outer = source[..<axis].reduce(1, *), inner = source[(axis + 1)...].reduce(1, *)
            let target = zeroedGradient(inputs[0])
            var region = target
            region.offset += range.lowerBound * inner
            emit(.copyRows(Plan.RowCopy(source: grad, target: region, rows: outer, width: range.count * inner,
                                        sourceStride: range.count * inner, targetStride: source[axis] * inner,
                                        accumulating: true)),
                 kind: .copy, nodes: [index], reads: [grad, target], writes: [target])
        case .sum(let axes) where leadingReduction(shape(inputs[0]), to: kept(shape(inputs[0]), axes)) != nil:
            let (rows, width) = leadingReduction(shape(inputs[0]), to: kept(shape(inputs[0]), axes))!
            let (target, accumulating) = gradientTarget(inputs[0])
            emitRowSum(from: grad, to: target, rows: rows, width: width, accumulating: accumulating, broadcasting: true,
                       nodes: [index])
        case .transpose(let permutation):
            var inverse = permutation
            for (axis, source) in permutation.enumerated() { inverse[source] = axis }
            let (target, accumulating) = gradientTarget(inputs[0])
            emitPermute(from: grad, to: target, shape: shape(index), permutation: inverse, accumulating: accumulating,
                        node: index)
        case .concat(let axis):
            let outShape = shape(index), inner = outShape[(axis + 1)...].reduce(1, *)
            let outer = outShape[..<axis].reduce(1, *)
            var start = 0
            for input in inputs {
                let width = shape(input)[axis] * inner
                defer { start += width }
                guard records[input].needsGradient else { continue }
                var region = grad
                region.offset += start
                let (target, accumulating) = gradientTarget(input)
                emit(.copyRows(Plan.RowCopy(source: region, target: target, rows: outer, width: width,
                                            sourceStride: outShape[axis] * inner, targetStride: width,
                                            accumulating: accumulating)),
                     kind: .copy, nodes: [index], reads: [grad] + (accumulating ? [target] : []), writes: [target])
            }
        case .sum, .logSoftmax, .softmax, .gather, .sparseMatmul:
            let op = record.op
            let inputShapes = inputs.map { shape($0) }
            let resultLocation = value[index]!, resultShape = shape(index)
            for k in inputs.indices where records[inputs[k]].needsGradient {
                let (target, accumulating) = gradientTarget(inputs[k])
                emitGeneral({ arguments in
                    let values = Array(arguments.prefix(inputShapes.count))
                    return Op.structuralGradient(op, input: k, inputs: values, result: arguments[arguments.count - 2],
                                                 grad: arguments[arguments.count - 1])
                }, inputs: inputs, output: target, count: count(inputs[k]), accumulating: accumulating, nodes: [index],
                   extra: [(resultLocation, resultShape), (grad, resultShape)])
            }
        case .unary, .binary, .affine, .clamp:
            checkFailed("Plan: element-wise record \(index) outside a group")
        case .checkpoint(let function):
            let wanted = inputs.map { records[$0].needsGradient }
            let targets = inputs.indices.filter { wanted[$0] }.map { k -> (Int, Location, Bool) in
                let (target, accumulating) = gradientTarget(inputs[k])
                return (k, target, accumulating)
            }
            let count = inputs.count
            emitGeneral({ arguments in
                let gradients = Op.checkpointGradients(function, inputs: Array(arguments.prefix(count)),
                                                       needsGradient: wanted, grad: arguments[count])
                return targets.map { gradients[$0.0] }
            }, inputs: inputs, outputs: targets.map { (location: $0.1, count: self.count(inputs[$0.0]), accumulating: $0.2) },
               nodes: [index], extra: [(grad, shape(index))])
        case .constant, .variable, .parameter, .stopGradient:
            break
        }
    }

    /// Makes node `index`'s gradient be `source` (the gradient of a node whose backward passes it through
    /// unchanged: a reshape, an addition), when nothing has been written to it and nobody else reads `source`
    /// afterwards; returns false when it must be copied instead.
    mutating func passThrough(_ source: Location, from node: Int, to index: Int) -> Bool {
        guard gradient[index] == nil, plan.storage[source.buffer].kind == .arena, !requestedGradients.contains(node),
              !requestedGradients.contains(index), records[index].needsGradient,
              !passedThrough.contains([source.buffer, source.offset, count(node)]),
              !sharedRegionBuffers.contains(source.buffer) || onlyReads(index, gradientOf: node) else { return false }
        if case .slice = records[index].op { return false }
        passedThrough.insert([source.buffer, source.offset, count(node)])
        gradient[index] = source
        plan.storage[source.buffer].nodes.append(index)
        return true
    }

    /// The gradient of `index`, zeroed first if nothing has been written to it yet (slices add into it). A
    /// slice's region of a gradient that other readers add into already holds their contributions: not zeroed.
    mutating func zeroedGradient(_ index: Int) -> Location {
        if let location = gradient[index] { return location }
        let (target, accumulating) = gradientTarget(index, storing: true)
        if !accumulating {
            emit(.fill(target, count: count(index)), kind: .fill, nodes: [index], reads: [], writes: [target])
        }
        return target
    }

    mutating func emitCopy(from source: Location, to target: Location, count: Int, accumulating: Bool, node: Int) {
        emit(.copyRows(Plan.RowCopy(source: source, target: target, rows: 1, width: count, sourceStride: count,
                                    targetStride: count, accumulating: accumulating)),
             kind: .copy, nodes: [node], reads: [source] + (accumulating ? [target] : []), writes: [target])
    }

    /// `Σ aᵢᵀ gᵢ` into leaf `index`'s gradient as one product of the row-stacked operands (eager does the same).
    /// The operands are stacked in recording order (a recurrent layer's time order), as `Tape` stacks them: a
    /// side whose operands then lie one after another in one buffer (each time step's rows of the input
    /// projection's gradient) is read where it lies; the other is copied into a stack, or was placed there.
    mutating func emitStackedProduct(_ backwardOrder: [StackedOperands], into index: Int) {
        let products = Array(backwardOrder.reversed())
        let first = products[0]
        let totalRows = products.reduce(0) { $0 + $1.rows }
        var a = first.left, g = first.right
        if products.count > 1 {
            stackedProducts[index] = products
            let planned = stackBuffers[index]
            for side in 0..<2 {
                let columns = side == 0 ? first.leftColumns : first.rightColumns
                let operands = products.map { (location: side == 0 ? $0.left : $0.right, rows: $0.rows) }
                if PlanLowering.areConsecutive(operands, columns: columns) { continue }
                // Laid out side by side in advance: copy only the operands that could not be placed (a zero state).
                let stack = (side == 0 ? planned?.left : planned?.right)
                    ?? newBuffer(.arena, count: totalRows * columns, isGradient: side == 1, node: index)
                var row = 0
                for operand in operands {
                    var at = stack
                    at.offset = row * columns
                    if operand.location != at {
                        emitCopy(from: operand.location, to: at, count: operand.rows * columns, accumulating: false, node: index)
                    }
                    row += operand.rows
                }
                if side == 0 { a = stack } else { g = stack }
            }
        }
        let (target, accumulating) = gradientTarget(index)
        var product = Plan.Product(transposeA: true, transposeB: false, m: first.leftColumns, n: first.rightColumns,
                                   k: totalRows, a: a, lda: first.leftColumns, b: g, ldb: first.rightColumns, c: target,
                                   ldc: first.rightColumns, accumulating: accumulating)
        // The terms of a zero constant (the zero initial state) add +0: a shared product's kernel skips their rows.
        product.zeroRows = products.prefix { isZeroConstant($0.left, count: $0.rows * $0.leftColumns) }.reduce(0) { $0 + $1.rows }
        emit(.matmul(product),
             kind: .stackedMatmul, nodes: [index], flops: 2 * first.leftColumns * first.rightColumns * totalRows,
             reads: [a, g] + (accumulating ? [target] : []), writes: [target])
    }
}
