// Gradients written region by region. A value read only through disjoint contiguous slices that cover it (the
// hoisted input projection `x·W + b`, read one time step's rows at a time) gets its gradient from its slices,
// each region in place. Zeroing the whole gradient first and adding every region's contributions onto the
// zeros costs a pass over all of it and a read of the zeros; instead a region whose first contribution comes
// from a sweep stores it as `g + 0` (the bits of eager's `0 + g`: −0 becomes +0 as there), and only the
// regions whose first contribution is added by another kernel, or that get none, are zeroed, where the whole
// gradient would have been.
//
// An addition whose operand is such a slice (a time step's rows of `x·W + b`, plus `h·U`) and that sweeps alone
// passes its gradient on unchanged: the sum's gradient is then allocated as the slice's region, so whoever
// writes it writes the region, and neither a copy sweep into the region nor a buffer of the sum's own remains.
// The other operand takes the same place (a pass-through), which is safe only when nothing writes to its
// gradient afterwards: a matrix product read by this addition alone (its backward only reads its gradient), or
// a bias row (summed back to its shape from there). A −0 written there stays −0 where eager's `0 + g` stores
// +0: equal as numbers, and the products and row sums that read the region start their sums from +0.

extension PlanLowering {
    /// The operand of addition `sum` whose region of its source's gradient `sum`'s gradient can be, if any: `sum`
    /// sweeps alone, the operand is a contiguous slice of a region source read by `sum` alone, and the other
    /// operand's gradient is exactly `sum`'s and only read (a product's), or is reduced from it (a bias row's).
    func regionSliceOperand(ofSum sum: Int) -> Int? {
        guard case .binary(.add) = records[sum].op, !requestedGradients.contains(sum),
              let group = grouping.groupOf[sum], grouping.groups[group] == [sum], !isLone([sum]) else { return nil }
        let inputs = records[sum].inputs
        guard inputs.count == 2, inputs[0] != inputs[1] else { return nil }
        for (slice, other) in [(inputs[0], inputs[1]), (inputs[1], inputs[0])] {
            guard case .slice(let axis, _) = records[slice].op, shape(slice) == shape(sum), records[slice].needsGradient,
                  gradient[slice] == nil, !requestedGradients.contains(slice), grouping.consumers(of: slice) == [sum] else {
                continue
            }
            let source = records[slice].inputs[0]
            guard regionSources.contains(source), shape(source)[..<axis].reduce(1, *) == 1 else { continue }
            if !records[other].needsGradient || shape(other) != shape(sum) || onlyReads(other, gradientOf: sum) { return slice }
        }
        return nil
    }

    /// Whether node `index`'s gradient, once it is `node`'s gradient handed on, is only read afterwards: a matrix
    /// product read by `node` alone (its backward reads its gradient, and nothing else writes to it).
    func onlyReads(_ index: Int, gradientOf node: Int) -> Bool {
        guard case .matmul = records[index].op else { return false }
        return grouping.consumers(of: index) == [node] && !requestedGradients.contains(index) && gradient[index] == nil
    }

    /// The values whose gradients are written region by region: every needed reader is a contiguous slice (not
    /// requested), the slices are disjoint and cover the value, and the value's own gradient is not requested.
    func regionSources(needed: [Bool]) -> Set<Int> {
        var sources: Set<Int> = []
        for index in records.indices where needed[index] && records[index].needsGradient
            && !requestedGradients.contains(index) {
            let readers = grouping.consumers(of: index)
            guard !readers.isEmpty else { continue }
            var ranges: [Range<Int>] = []
            for reader in readers {
                guard case .slice(let axis, let range) = records[reader].op, !requestedGradients.contains(reader),
                      shape(index)[..<axis].reduce(1, *) == 1 else { ranges = []; break }
                let inner = shape(index)[(axis + 1)...].reduce(1, *)
                ranges.append((range.lowerBound * inner)..<(range.upperBound * inner))
            }
            guard !ranges.isEmpty else { continue }
            ranges.sort { $0.lowerBound < $1.lowerBound }
            var end = 0
            for range in ranges {
                guard range.lowerBound == end else { end = -1; break }
                end = range.upperBound
            }
            if end == count(index) { sources.insert(index) }
        }
        return sources
    }

    /// The gradient buffer of region source `source`, allocated without zeroing; the place a fill would have run
    /// is noted for the regions that turn out to need one.
    mutating func regionSourceGradient(_ source: Int) -> Location {
        if let location = gradient[source] { return location }
        let location = newBuffer(.arena, count: count(source), isGradient: true, node: source)
        gradient[source] = location
        regionFillAt[source] = plan.steps.count
        return location
    }

    /// Whether `source`'s gradient comes from its column slices alone, each read in place by one sweep's members:
    /// every reader is such a slice, and the slices are disjoint and cover its columns (an MGU's two gate columns
    /// of a time step's rows, read by two sweeps). Each sweep then stores its columns, and nothing zeroes them.
    func columnsWrittenOnce(_ source: Int) -> Bool {
        let readers = grouping.consumers(of: source)
        guard !readers.isEmpty, shape(source).count == 2 else { return false }
        var ranges: [Range<Int>] = []
        for reader in readers {
            guard grouping.isStridedView(reader), !requestedGradients.contains(reader),
                  case .slice(_, let range) = records[reader].op,
                  Set(grouping.consumers(of: reader).map { grouping.groupOf[$0] }).count == 1 else { return false }
            ranges.append(range)
        }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var end = 0
        for range in ranges {
            guard range.lowerBound == end else { return false }
            end = range.upperBound
        }
        return end == shape(source)[1]
    }

    /// Where a sweep stores (not adds) column slice `view`'s gradient in its source's, when the source's columns
    /// are each written once and nothing was written there before; the place a fill would have run is noted
    /// for slices that turn out to get no gradient.
    mutating func columnStoredGradient(_ view: Int) -> Location? {
        let source = records[view].inputs[0]
        if columnFillAt[source] != nil {
            storedColumns.insert(view)
            return gradient[source]
        }
        guard gradient[source] == nil, columnsWrittenOnce(source) else { return nil }
        let position = plan.steps.count
        let (location, accumulating) = gradientTarget(source, storing: true)
        guard !accumulating else { return nil }
        columnFillAt[source] = position
        storedColumns.insert(view)
        return location
    }

    /// Zeroes, where each region source's whole gradient would have been zeroed, the regions whose first
    /// contribution was added rather than stored, or that got none (merged into runs of adjacent regions); and
    /// the gradients stored column slice by column slice in which a slice got none.
    mutating func fillUnstoredRegions() {
        var fills: [(position: Int, location: Location, count: Int, node: Int)] = []
        for (source, position) in regionFillAt {
            let base = gradient[source]!
            var ranges: [Range<Int>] = []
            for slice in grouping.consumers(of: source) where !storedRegions.contains(slice) {
                guard case .slice(let axis, let range) = records[slice].op else { continue }
                let inner = shape(source)[(axis + 1)...].reduce(1, *)
                ranges.append((range.lowerBound * inner)..<(range.upperBound * inner))
            }
            ranges.sort { $0.lowerBound < $1.lowerBound }
            var merged: [Range<Int>] = []
            for range in ranges {
                if let last = merged.last, last.upperBound == range.lowerBound {
                    merged[merged.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    merged.append(range)
                }
            }
            for range in merged {
                var region = base
                region.offset += range.lowerBound
                fills.append((position, region, range.count, source))
            }
        }
        for (source, position) in columnFillAt where grouping.consumers(of: source).contains(where: { !storedColumns.contains($0) }) {
            fills.append((position, gradient[source]!, count(source), source))
        }
        // Inserted latest first, so that every noted position still points where it did.
        for fill in fills.sorted(by: { $0.position > $1.position }) {
            plan.steps.insert(Plan.Kernel(work: .fill(fill.location, count: fill.count), kind: .fill, nodes: [fill.node],
                                          isBackward: true, flops: 0, reads: [], writes: [fill.location.buffer]),
                              at: fill.position)
        }
    }
}
