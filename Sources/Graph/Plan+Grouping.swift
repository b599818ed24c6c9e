// The fuser's decisions: which element-wise records run as one sweep, which slices are read in place, which
// group values are stored, and the order the kernels run in.
//
// XLA-style: an element-wise record joins the groups of its element-wise inputs of the same shape when the
// union stays convex (no path from a member to another member leaves the group: otherwise the group would
// have to wait for a kernel that waits for it). A value read outside its group is stored, and so are the
// transcendentals backward reads where `Plan+StoredValues.swift` finds storing cheap; everything else lives in
// registers of one tile.

struct PlanGrouping {
    /// A schedulable piece: a fused group, or a single non-element-wise record.
    enum Unit: Hashable {
        case group(Int)
        case record(Int)
    }

    let records: [Tape.Record]
    let fusing: Bool
    private(set) var groupOf: [Int?]
    private(set) var groups: [[Int]] = []
    private(set) var stridedViews: Set<Int> = []
    private(set) var materialized: Set<Int> = []
    private var consumers: [[Int]]

    init(records: [Tape.Record], fusing: Bool) {
        self.records = records
        self.fusing = fusing
        groupOf = Array(repeating: nil, count: records.count)
        consumers = Array(repeating: [], count: records.count)
    }

    func isStridedView(_ index: Int) -> Bool { stridedViews.contains(index) }
    /// The needed records that read record `index`.
    func consumers(of index: Int) -> [Int] { consumers[index] }
    func isMaterialized(_ index: Int) -> Bool { materialized.contains(index) }

    /// Marks `members` as stored by their sweep for backward to read (`Plan+StoredValues.swift` decides which).
    mutating func store(_ members: Set<Int>) { materialized.formUnion(members) }

    /// Whether slice `index` can be read in place (strided) by the sweeps consuming it.
    private func canView(_ index: Int, pinned: Set<Int>) -> Bool {
        guard fusing, !pinned.contains(index), case .slice(let axis, _) = records[index].op else { return false }
        let shape = records[index].value.shape
        guard axis == shape.count - 1, shape.count >= 2, shape.dropLast().reduce(1, *) > 1 else { return false }
        return !consumers[index].isEmpty && consumers[index].allSatisfy {
            records[$0].op.elementOp != nil && records[$0].value.shape == shape
        }
    }

    mutating func group(needed: [Bool], pinned: Set<Int>) {
        for index in records.indices where needed[index] {
            for input in records[index].inputs where !consumers[input].contains(index) { consumers[input].append(index) }
        }
        for index in records.indices where needed[index] && canView(index, pinned: pinned) { stridedViews.insert(index) }
        for index in records.indices where needed[index] && records[index].op.elementOp != nil {
            let shape = records[index].value.shape
            var candidates: [Int] = []
            if fusing && !pinned.contains(index) {
                for input in records[index].inputs {
                    if let g = groupOf[input], !candidates.contains(g), records[input].value.shape == shape { candidates.append(g) }
                }
            }
            groups.append([index])
            groupOf[index] = groups.count - 1
            // Join every candidate group if the union stays convex and laid out; else the largest that fits.
            let all = candidates
            if !all.isEmpty && fits(all, with: index) {
                merge(all, with: index)
            } else {
                for g in candidates.sorted(by: { groups[$0].count > groups[$1].count }) where fits([g], with: index) {
                    merge([g], with: index)
                    break
                }
            }
        }
        for (g, members) in groups.enumerated() where !members.isEmpty {
            for member in members where pinned.contains(member) || consumers[member].contains(where: { groupOf[$0] != g }) {
                materialized.insert(member)
            }
        }
    }

    private mutating func merge(_ candidates: [Int], with index: Int) {
        let own = groupOf[index]!
        var members = groups[own]
        for g in candidates {
            members += groups[g]
            groups[g] = []
        }
        members.sort()
        groups[own] = members
        for member in members { groupOf[member] = own }
    }

    /// Whether `index` with the members of `candidates` forms a convex group with one iteration layout.
    private func fits(_ candidates: [Int], with index: Int) -> Bool {
        let members = Set(candidates.flatMap { groups[$0] } + [index])
        let lowest = members.min()!
        for member in members {
            for input in records[member].inputs where !members.contains(input) {
                if depends(input, on: members, lowest: lowest) { return false }
            }
        }
        return layout(for: members.sorted()) != nil
    }

    /// Whether record `start` depends on any of `members` (all at or above `lowest`).
    private func depends(_ start: Int, on members: Set<Int>, lowest: Int) -> Bool {
        guard start > lowest else { return false }
        var stack = [start]
        var seen: Set<Int> = [start]
        while let next = stack.popLast() {
            for input in records[next].inputs {
                if members.contains(input) { return true }
                if input > lowest && seen.insert(input).inserted { stack.append(input) }
            }
        }
        return false
    }

    /// The external operand shapes of a group and the column count its strided views require.
    func operandShapes(for members: [Int]) -> (shapes: [[Int]], columns: Int?) {
        let set = Set(members)
        var shapes: [[Int]] = []
        var columns: Int?
        for member in members {
            for input in records[member].inputs where !set.contains(input) {
                shapes.append(records[input].value.shape)
                if stridedViews.contains(input) { columns = records[input].value.shape.last }
            }
        }
        return (shapes, columns)
    }

    /// The group's iteration layout, or `nil` when its operands cannot share one.
    func layout(for members: [Int]) -> (rows: Int, columns: Int, layouts: [OperandLayout])? {
        let shape = records[members.last!].value.shape
        let (shapes, columns) = operandShapes(for: members)
        return elementLayout(shape, operandShapes: shapes + [shape], requiredColumns: columns)
    }

    /// The units in an order where every unit runs after the units it reads (recording order where it can).
    func unitOrder(needed: [Bool]) -> [Unit] {
        var units: [Unit] = []
        var seen: Set<Unit> = []
        for index in records.indices where needed[index] {
            let unit = self.unit(of: index)
            if seen.insert(unit).inserted { units.append(unit) }
        }
        var emitted: Set<Unit> = []
        var order: [Unit] = []
        order.reserveCapacity(units.count)
        for unit in units where !emitted.contains(unit) {
            // Depth-first, dependencies first, with an explicit stack (unrolled graphs are deep).
            var stack: [(Unit, Bool)] = [(unit, false)]
            while let (next, expanded) = stack.popLast() {
                if emitted.contains(next) { continue }
                if expanded {
                    emitted.insert(next)
                    order.append(next)
                    continue
                }
                stack.append((next, true))
                for dependency in dependencies(of: next) where !emitted.contains(dependency) {
                    stack.append((dependency, false))
                }
            }
        }
        return order
    }

    func unit(of index: Int) -> Unit {
        if let g = groupOf[index] { return .group(g) }
        return .record(index)
    }

    private func dependencies(of unit: Unit) -> [Unit] {
        let members: [Int]
        switch unit {
        case .group(let g): members = groups[g]
        case .record(let index): members = [index]
        }
        var result: [Unit] = []
        for member in members {
            for input in records[member].inputs {
                let dependency = self.unit(of: input)
                if dependency != unit && !result.contains(dependency) { result.append(dependency) }
            }
        }
        return result
    }
}
