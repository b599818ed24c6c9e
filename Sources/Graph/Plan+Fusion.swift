// Lowering a fused group: one sweep forward, one sweep backward.
//
// Forward evaluates the members in recording order in registers of one tile and stores the members read
// outside the group. Backward, per tile, re-evaluates the members whose values the derivative formulas read
// (or reads them where forward stored them: read outside the group, or transcendentals stored for backward by
// `Plan+StoredValues.swift`), then walks the members in
// reverse applying each one's formulas (`Op.elementwiseDerivative`), summing contributions in registers, and
// writes the gradients of the group's inputs: in place into a sliced source's gradient for strided views.

extension PlanLowering {
    /// Operands of one element-wise program, deduplicated, with what the layout needs to know about each.
    struct OperandTable {
        var builder = ElementProgramBuilder()
        var locations: [Location] = []
        var shapes: [[Int]] = []
        /// The row stride of strided views (the sliced source's row length); `nil` for contiguous operands.
        var strides: [Int?] = []
        var registers: [Location: Int] = [:]

        mutating func register(_ location: Location, shape: [Int], stride: Int?, shared: Bool = true) -> Int {
            if shared, let register = registers[location] { return register }
            let register = builder.addOperand()
            locations.append(location)
            shapes.append(shape)
            strides.append(stride)
            if shared { registers[location] = register }
            return register
        }
    }

    /// The location, shape and row stride of a group's external input (a strided view reads its source in place).
    func operand(_ index: Int) -> (Location, [Int], Int?) {
        if grouping.isStridedView(index) {
            return (value[index]!, shape(index), shape(records[index].inputs[0]).last!)
        }
        return (value[index]!, shape(index), accumulations[index]?.rowStride)
    }

    /// Emits the element-wise kernel (the grouper has checked that its operands share a layout).
    mutating func emitSweep(_ table: OperandTable, space: [Int], nodes: [Int], reads: [Location], writes: [Location]) {
        let required = table.strides.indices.compactMap { table.strides[$0] != nil ? table.shapes[$0].last : nil }.first
        guard let layout = elementLayout(space, operandShapes: table.shapes, requiredColumns: required) else {
            checkFailed("Plan: the operands of kernel \(nodes) share no layout")
        }
        let program = table.builder.finish()
        let operands = table.locations.indices.map { k in
            var operandLayout = layout.layouts[k]
            if let stride = table.strides[k] { operandLayout.rowStride = stride }
            return Plan.ElementOperand(location: table.locations[k], layout: operandLayout)
        }
        emit(.elementwise(program, operands: operands, rows: layout.rows, columns: layout.columns), kind: .fused,
             nodes: nodes, flops: layout.rows * layout.columns * program.operationCount, reads: reads, writes: writes)
    }

    /// Whether a group is a lone record whose operands no layout fits (the grouper checks larger groups).
    func isLone(_ members: [Int]) -> Bool { members.count == 1 && grouping.layout(for: members) == nil }

    mutating func lowerGroupForward(_ g: Int) {
        let members = grouping.groups[g]
        // Additions run as GEMMs into their addend's place first: the sweep reads their sums from there.
        for member in members where accumulations[member] != nil { emitAccumulation(member) }
        if members.allSatisfy({ accumulations[$0] != nil }) { return }
        if isLone(members) {
            lowerLoneForward(members[0])
            return
        }
        let space = shape(members.last!)
        var table = OperandTable()
        var registers: [Int: Int] = [:]
        var reads: [Location] = [], writes: [Location] = []
        for member in members where accumulations[member] == nil {
            let inputs = records[member].inputs.map { input -> Int in
                if let register = registers[input] { return register }
                let (location, inputShape, stride) = operand(input)
                reads.append(location)
                return table.register(location, shape: inputShape, stride: stride)
            }
            registers[member] = table.builder.emit(records[member].op.elementOp!, inputs[0], inputs.count > 1 ? inputs[1] : nil)
        }
        for member in members where grouping.isMaterialized(member) && accumulations[member] == nil {
            let target = newBuffer(.arena, count: count(member), isGradient: false, node: member)
            value[member] = target
            writes.append(target)
            let register = table.register(target, shape: space, stride: nil, shared: false)
            table.builder.store(registers[member]!, into: register, accumulating: false)
        }
        emitSweep(table, space: space, nodes: members, reads: reads, writes: writes)
    }

    /// A lone element-wise record whose operands no layout fits, through the eager kernels.
    mutating func lowerLoneForward(_ member: Int) {
        let op = records[member].op
        let target = newBuffer(.arena, count: count(member), isGradient: false, node: member)
        value[member] = target
        emitGeneral({ inputs in
            switch op {
            case .unary(let function): inputs[0].map(function)
            case .binary(let function): inputs[0].combined(with: inputs[1], function)
            case .affine(let scale, let shift): inputs[0].affine(scale: scale, shift: shift)
            case .clamp(let lower, let upper): inputs[0].clamped(to: lower...upper)
            default: checkFailed("Plan: \(op.name) is not element-wise")
            }
        }, inputs: records[member].inputs, output: target, count: count(member), accumulating: false, nodes: [member])
    }

    mutating func lowerGroupBackward(_ g: Int) {
        let members = grouping.groups[g]
        guard members.contains(where: { gradient[$0] != nil }) else { return }
        if isLone(members) {
            lowerLoneBackward(members[0])
            return
        }
        let space = shape(members.last!)
        let memberSet = Set(members)
        var table = OperandTable()
        var reads: [Location] = [], writes: [Location] = []
        var values: [Int: Int] = [:]
        func valueRegister(_ index: Int) -> Int {
            if let register = values[index] { return register }
            let register: Int
            if memberSet.contains(index) && !grouping.isMaterialized(index) && accumulations[index] == nil {
                let inputs = records[index].inputs.map { valueRegister($0) }
                register = table.builder.emit(records[index].op.elementOp!, inputs[0], inputs.count > 1 ? inputs[1] : nil)
            } else {
                let (location, inputShape, stride) = operand(index)
                reads.append(location)
                register = table.register(location, shape: inputShape, stride: stride)
            }
            values[index] = register
            return register
        }
        // Contributions by the consumer they come from: eager backward adds them latest consumer first.
        var internalContributions: [Int: [(consumer: Int, register: Int)]] = [:]
        var external: [(index: Int, contributions: [(consumer: Int, register: Int)])] = []
        // Registers holding nothing but a member's gradient as other kernels wrote it: an input receiving exactly
        // that (an addition's operands) can take over the buffer instead of a copy.
        var untouched: [Int: (member: Int, location: Location)] = [:]
        for member in members.reversed() {
            // What other kernels wrote stands for the consumers outside the group; it joins the running sum where
            // eager backward would have added those consumers, so the sum associates as eager's does.
            var sum: Int?, written: Int?
            if let location = gradient[member] {
                reads.append(location)
                written = table.register(location, shape: space, stride: nil)
                if internalContributions[member] == nil { untouched[written!] = (member, location) }
            }
            let latestOutside = grouping.consumers(of: member).filter { !memberSet.contains($0) }.max() ?? -1
            for (consumer, contribution) in internalContributions[member] ?? [] {
                if let pending = written, consumer < latestOutside {
                    sum = table.builder.add(pending, to: sum)
                    written = nil
                }
                sum = table.builder.add(contribution, to: sum)
            }
            if let pending = written { sum = table.builder.add(pending, to: sum) }
            guard let grad = sum, records[member].needsGradient else { continue }
            let op = records[member].op, inputs = records[member].inputs
            for k in inputs.indices where records[inputs[k]].needsGradient {
                let formula = op.elementwiseDerivative(input: k)
                let read = formula.readInputs
                let inputRegisters = inputs.indices.map { read.contains($0) ? valueRegister(inputs[$0]) : nil }
                let contribution = table.builder.emit(formula, gradient: grad,
                                                      result: formula.readsResult ? valueRegister(member) : nil,
                                                      inputs: inputRegisters)
                if memberSet.contains(inputs[k]) {
                    internalContributions[inputs[k], default: []].append((member, contribution))
                } else if let slot = external.firstIndex(where: { $0.index == inputs[k] }) {
                    external[slot].contributions.append((member, contribution))
                } else {
                    external.append((inputs[k], [(member, contribution)]))
                }
            }
        }
        var reductions: [(temporary: Location, index: Int)] = []
        // Sources whose whole gradient these strided views write, and nothing wrote before: stored, not zeroed
        // (a time step's rows of a projection whose gradient is written region by region: that region is not
        // zeroed either). A place that already holds contributions (a slice's region of a gradient other
        // readers add into) is added into instead.
        var storedSources: Set<Int> = []
        let direct = Set(external.map(\.index).filter { !grouping.isStridedView($0) })
        for source in coveredSources(external.map(\.index)) where gradient[source] == nil && !direct.contains(source) {
            if !gradientTarget(source, storing: true).accumulating { storedSources.insert(source) }
        }
        // Eager backward adds a value's gradient contributions latest consumer first, a slice's as one finished
        // sum: the stores below follow that order, one contribution at a time onto a gradient already written
        // (zeroed first when this sweep also writes slices of it), so the sums associate as eager's do.
        var stores: [(key: Int, index: Int, contributions: [Int])] = []
        for (index, contributions) in external {
            // Already there: the input's gradient is the place the member's gradient was written.
            if contributions.count == 1, let source = untouched[contributions[0].register], gradient[index] == source.location {
                continue
            }
            let latest = contributions.map(\.consumer).max()!
            if grouping.isStridedView(index) {
                stores.append((index, index, contributions.map(\.register)))
            } else if count(index) == space.reduce(1, *),
                      external.contains(where: { grouping.isStridedView($0.index) && records[$0.index].inputs[0] == index }) {
                _ = zeroedGradient(index)
                stores += contributions.map { ($0.consumer, index, [$0.register]) }
            } else if count(index) == space.reduce(1, *), let location = gradient[index] {
                // What other kernels wrote joins the sum where eager adds those consumers; the sum then replaces it.
                reads.append(location)
                let written = table.register(location, shape: space, stride: nil)
                let outside = grouping.consumers(of: index).filter { !memberSet.contains($0) }.max() ?? Int.max
                var terms = contributions
                terms.insert((outside, written), at: terms.firstIndex { $0.consumer < outside } ?? terms.count)
                let total = terms.dropFirst().reduce(terms[0].register) { table.builder.add($1.register, to: $0) }
                let register = table.register(location, shape: space, stride: nil, shared: false)
                table.builder.store(total, into: register, accumulating: false)
                writes.append(location)
            } else {
                stores.append((latest, index, contributions.map(\.register)))
            }
        }
        for (_, index, contributions) in stores.enumerated().sorted(by: { ($0.element.key, -$0.offset) > ($1.element.key, -$1.offset) }).map(\.element) {
            if contributions.count == 1, let source = untouched[contributions[0]], count(index) == space.reduce(1, *),
               !grouping.isStridedView(index), passThrough(source.location, from: source.member, to: index) {
                continue
            }
            func sum() -> Int { contributions.dropFirst().reduce(contributions[0]) { table.builder.add($1, to: $0) } }
            if grouping.isStridedView(index) {
                let source = records[index].inputs[0]
                let sourceShape = shape(source)
                guard case .slice(_, let range) = records[index].op else { continue }
                let (target, accumulating): (Location, Bool)
                if storedSources.contains(source) {
                    target = gradient[source]!
                    accumulating = false
                } else if let place = columnStoredGradient(index) {
                    target = place
                    accumulating = false
                } else {
                    target = zeroedGradient(source)
                    accumulating = true
                }
                var region = target
                region.offset += range.lowerBound
                let register = table.register(region, shape: shape(index), stride: sourceShape.last!, shared: false)
                table.builder.store(sum(), into: register, accumulating: accumulating)
                if accumulating { reads.append(target) }
                writes.append(target)
            } else if count(index) == space.reduce(1, *) {
                let (target, accumulating) = gradientTarget(index, storing: true)
                let register = table.register(target, shape: space, stride: nil, shared: false)
                // A region stored instead of added onto zeros: `g + 0` keeps eager's bits (−0 → +0).
                let value = storedRegions.contains(index) && !accumulating
                    ? table.builder.emit(.affine(scale: 1, shift: 0), sum()) : sum()
                table.builder.store(value, into: register, accumulating: accumulating)
                if accumulating { reads.append(target) }
                writes.append(target)
            } else if contributions.count == 1, let source = untouched[contributions[0]] {
                // A broadcast input receiving a member's gradient unchanged: sum that buffer back to its shape.
                reductions.append((source.location, index))
            } else {
                // A broadcast input (a bias row): each full-size contribution is summed back to its shape
                // afterwards, one after another, as eager reduces and adds each.
                for contribution in contributions {
                    let temporary = newBuffer(.arena, count: space.reduce(1, *), isGradient: true, node: index)
                    let register = table.register(temporary, shape: space, stride: nil, shared: false)
                    table.builder.store(contribution, into: register, accumulating: false)
                    writes.append(temporary)
                    reductions.append((temporary, index))
                }
            }
        }
        // Every gradient handed on unchanged: nothing to sweep.
        if !writes.isEmpty { emitSweep(table, space: space, nodes: members, reads: reads, writes: writes) }
        for (temporary, index) in reductions {
            let (target, accumulating) = gradientTarget(index)
            let inputShape = shape(index)
            if let (rows, width) = leadingReduction(space, to: inputShape) {
                emitRowSum(from: temporary, to: target, rows: rows, width: width, accumulating: accumulating,
                           broadcasting: false, nodes: members)
                continue
            }
            emitGeneral({ $0[0].sum(toShape: inputShape) }, inputs: [], output: target, count: count(index),
                        accumulating: accumulating, nodes: members, extra: [(temporary, space)])
        }
    }

    /// The sources whose whole gradient this group's strided views write (disjoint slices covering every column).
    func coveredSources(_ indices: [Int]) -> Set<Int> {
        var ranges: [Int: [Range<Int>]] = [:]
        for index in indices where grouping.isStridedView(index) {
            if case .slice(_, let range) = records[index].op { ranges[records[index].inputs[0], default: []].append(range) }
        }
        var covered: Set<Int> = []
        for (source, list) in ranges {
            let sorted = list.sorted { $0.lowerBound < $1.lowerBound }
            var end = 0
            var disjoint = true
            for range in sorted {
                if range.lowerBound != end { disjoint = false }
                end = range.upperBound
            }
            if disjoint && end == shape(source).last! { covered.insert(source) }
        }
        return covered
    }

    /// The backward of a lone element-wise record whose operands no layout fits, through the eager kernels.
    mutating func lowerLoneBackward(_ index: Int) {
        let op = records[index].op, inputs = records[index].inputs
        guard let grad = gradient[index] else { return }
        for k in inputs.indices where records[inputs[k]].needsGradient {
            let (target, accumulating) = gradientTarget(inputs[k])
            let inputShape = shape(inputs[k]), count = inputs.count
            emitGeneral({ arguments in
                Tensor.evaluate(op.elementwiseDerivative(input: k), gradient: arguments[count + 1],
                                result: arguments[count], inputs: Array(arguments.prefix(count))).sum(toShape: inputShape)
            }, inputs: inputs, output: target, count: self.count(inputs[k]), accumulating: accumulating, nodes: [index],
               extra: [(value[index]!, shape(index)), (grad, shape(index))])
        }
    }
}
