import Dispatch
import Synchronization

// Concurrent groups: independent kernels outside the row-parallel segments, run at once, one per core.
//
// After the backward recurrence a step's weight gradients are a few large products that share nothing (an MGU's
// Σₜ hₜᵀ·dfₜ and Σₜ (f⊙h)ₜᵀ·dĥₜ, each [128 × 3200]·[3200 × 128]) and sums over rows (the bias gradients). Each
// split itself over the cores, which costs two forks and joins per product (packing A, then the column blocks),
// narrower blocks, and a fork for each sum. The kernels between two segments are list-scheduled so that such
// kernels meet, and ready kernels that are pairwise independent (no span one writes overlaps a span another
// touches, the check segments use) run as one fork, each piece of work on one thread (lanes, longest first onto
// the less loaded thread, decide whether a group balances, and order a replay on one thread). A kernel computes
// the same bits on one thread as split (the GEMM's blocks and the sums' order depend on the shapes alone), so the
// plan's results do not change. Two kernels running at once must not share arena bytes: the
// memory plan keeps every buffer a group touches alive to the group's end, as for segments.
//
// The threads take the group's work piece by piece (whole kernels, then blocks) from a shared counter, not from fixed
// lanes: a product with a long K (``GEMMKSplit``) is cut into its K blocks, so both cores share it and a thread
// that starts late (a worker waking up) still takes half of what is left instead of leaving its whole lane to
// the caller. Each block's product lands in a partial of the plan's own (allocated once); after the join the
// partials are added in block order, which gives `gemm`'s bits whichever thread computed which block.

extension Plan {
    /// A run of pairwise independent kernels, run at once: `lanes` as balanced over two threads (run in turn on one
    /// thread), `pieces` as the threads take them.
    struct ConcurrentGroup {
        var kernels: Range<Int>
        var lanes: [[Int]]
        /// The work in the order threads take it: whole kernels, largest first, then the K blocks of split products.
        var pieces: [GroupPiece] = []
        /// The products cut over K, and where their partials start in ``Plan/groupPartials``.
        var splits: [(kernel: Int, split: GEMMKSplit, partials: Int)] = []
    }

    /// One piece of a group's work: kernel `kernel` whole, or block `block` of its K split (`block >= 0`).
    struct GroupPiece {
        var kernel: Int
        var block: Int
        /// Index into the group's `splits` (valid when `block >= 0`).
        var split: Int
    }

    /// The least work (FLOPs, or floats moved) a group needs to pay for its fork and join.
    static let concurrentMinimumWork = 1_000_000
    /// The most of a group's work one thread may get: a group with one dominant kernel is better left to that
    /// kernel's own split.
    static let concurrentMaximumShare = 0.7
    /// The most kernels in one group.
    static let concurrentMaximumKernels = 16

    /// A kernel's work for balancing the threads (FLOPs of a product, floats moved by a fill, copy or sum), or
    /// `nil` for a kind that may not run beside another: element-wise sweeps share the scratch of one thread,
    /// general kernels allocate and call back into eager code, parameter gradients hand tensors over.
    func concurrentWork(_ kernel: Kernel) -> Int? {
        switch kernel.work {
        case .matmul, .sharedMatmul: kernel.flops
        case .fill(_, let count): count
        case .copyRows(let copy): 2 * copy.rows * copy.width
        case .rowSum(let sum): 2 * sum.rows * sum.width
        case .elementwise, .permute, .general, .parameterGradient: nil
        }
    }

    /// Reorders each run of kernels between segments so that independent products, copies and sums meet, and
    /// groups them (after `formSegments`, before the memory plan).
    ///
    /// List scheduling over the run's dependences (a kernel depends on an earlier one when their spans conflict;
    /// parameter-gradient and general kernels also keep their order among themselves, since they have effects
    /// outside the arena): kernels that cannot join a group run first, as soon as they are ready (they are small
    /// here, and running them early makes the products that wait on them ready); then the ready kernels that can
    /// run at once form a group when they balance over two threads, else the smallest ready one runs alone. Only
    /// independent kernels change places, so every value is computed as before.
    func formConcurrentGroups() {
        var inSegment = Array(repeating: false, count: steps.count)
        for segment in segments { for index in segment.kernels { inSegment[index] = true } }
        var order: [Int] = []
        var found: [(start: Int, lanes: [[Int]], count: Int)] = []
        var index = 0
        while index < steps.count {
            if inSegment[index] {
                order.append(index)
                index += 1
                continue
            }
            var end = index
            while end < steps.count && !inSegment[end] { end += 1 }
            // A run that forms no group keeps its order.
            var scheduled: [Int] = [], groups: [(start: Int, lanes: [[Int]], count: Int)] = []
            schedule(Array(index..<end), into: &scheduled, groups: &groups)
            if groups.isEmpty {
                order += index..<end
            } else {
                found += groups.map { ($0.start + order.count, $0.lanes, $0.count) }
                order += scheduled
            }
            index = end
        }
        steps = order.map { steps[$0] }
        concurrentGroups = found.map { group in
            let position = Dictionary(uniqueKeysWithValues: order[group.start..<(group.start + group.count)].enumerated()
                .map { ($1, group.start + $0) })
            return ConcurrentGroup(kernels: group.start..<(group.start + group.count),
                                   lanes: group.lanes.map { $0.map { position[$0]! } })
        }
        groupStarts = Array(repeating: nil, count: steps.count)
        for (k, group) in concurrentGroups.enumerated() { groupStarts[group.kernels.lowerBound] = k }
        cutGroupsIntoPieces()
    }

    /// Lists each group's pieces (whole kernels largest first, then the K blocks; ties in kernel and block order),
    /// cutting the products with a long K into their blocks, and sizes the partials the largest group needs.
    private func cutGroupsIntoPieces() {
        var partialCount = 0
        for g in concurrentGroups.indices {
            var pieces: [(piece: GroupPiece, work: Int)] = []
            var splits: [(kernel: Int, split: GEMMKSplit, partials: Int)] = [], offset = 0
            for index in concurrentGroups[g].kernels {
                if case .matmul(let product) = steps[index].work, product.packed == nil,
                   let split = GEMMKSplit(transposeA: product.transposeA, transposeB: product.transposeB, m: product.m,
                                          n: product.n, k: product.k) {
                    for block in 0..<split.blocks {
                        pieces.append((GroupPiece(kernel: index, block: block, split: splits.count),
                                       steps[index].flops / split.blocks))
                    }
                    splits.append((index, split, offset))
                    offset += split.partialCount
                } else {
                    pieces.append((GroupPiece(kernel: index, block: -1, split: -1), concurrentWork(steps[index]) ?? 0))
                }
            }
            // Whole kernels first, largest first, then the K blocks: the blocks, small and alike, fill in behind
            // kernels whose time their FLOPs misjudge (an MGU's one-row xᵀ·D streams 3 MB for 1.6 MFLOP and took
            // 0.3 ms, as long as two blocks of 15 MFLOP). A stable sort: equal pieces keep kernel and block order.
            func key(_ entry: (offset: Int, element: (piece: GroupPiece, work: Int))) -> (Int, Int, Int) {
                (entry.element.piece.block >= 0 ? 1 : 0, -entry.element.work, entry.offset)
            }
            concurrentGroups[g].pieces = pieces.enumerated().sorted { key($0) < key($1) }.map(\.element.piece)
            concurrentGroups[g].splits = splits
            partialCount = Swift.max(partialCount, offset)
        }
        groupPartialCount = partialCount
    }

    /// Appends the run `run` (kernel indices before reordering) to `order` in list-scheduled order, recording
    /// its groups (their start in `order`, their lanes as kernel indices before reordering).
    private func schedule(_ run: [Int], into order: inout [Int], groups: inout [(start: Int, lanes: [[Int]], count: Int)]) {
        let spans = run.map { regions(steps[$0]) }
        let ordered = run.map { steps[$0].kind == .parameterGradient || steps[$0].kind == .general }
        var waiting = Array(repeating: 0, count: run.count)
        var dependents = Array(repeating: [Int](), count: run.count)
        for j in run.indices {
            for i in 0..<j where (ordered[i] && ordered[j]) || !Plan.independent(spans[i], spans[j]) {
                dependents[i].append(j)
                waiting[j] += 1
            }
        }
        var ready = run.indices.filter { waiting[$0] == 0 }
        func finish(_ k: Int) {
            for j in dependents[k] {
                waiting[j] -= 1
                if waiting[j] == 0 { ready.append(j) }
            }
        }
        while !ready.isEmpty {
            ready.sort()
            if let k = ready.firstIndex(where: { concurrentWork(steps[run[$0]]) == nil }) {
                let next = ready.remove(at: k)
                order.append(run[next])
                finish(next)
                continue
            }
            let members = Array(ready.prefix(Plan.concurrentMaximumKernels))
            if let lanes = balancedLanes(members.map { run[$0] }) {
                groups.append((order.count, lanes, members.count))
                ready.removeAll { members.contains($0) }
                order += members.map { run[$0] }
                members.forEach(finish)
                continue
            }
            let smallest = ready.indices.min { concurrentWork(steps[run[ready[$0]]])! < concurrentWork(steps[run[ready[$1]]])! }!
            let next = ready.remove(at: smallest)
            order.append(run[next])
            finish(next)
        }
    }

    /// The kernels shared out over two threads, longest first onto the less loaded one, or `nil` when the group
    /// is too small or one thread would get most of it.
    private func balancedLanes(_ members: [Int]) -> [[Int]]? {
        guard members.count >= 2 else { return nil }
        let work = members.map { concurrentWork(steps[$0])! }
        let total = work.reduce(0, +)
        guard total >= Plan.concurrentMinimumWork else { return nil }
        var lanes: [[Int]] = [[], []], loads = [0, 0]
        for k in members.indices.sorted(by: { work[$0] > work[$1] }) {
            let lane = loads[0] <= loads[1] ? 0 : 1
            lanes[lane].append(members[k])
            loads[lane] += work[k]
        }
        guard Double(loads.max()!) <= Plan.concurrentMaximumShare * Double(total) else { return nil }
        // In schedule order within a thread, so a replay runs the kernels of each thread as the schedule lists them.
        return lanes.map { $0.sorted() }
    }

    /// Keeps every buffer a concurrent group touches alive to the group's end (called by the memory plan).
    func extendLifetimesOverConcurrentGroups() {
        for group in concurrentGroups {
            for index in group.kernels {
                for buffer in steps[index].reads + steps[index].writes {
                    storage[buffer].last = max(storage[buffer].last, group.kernels.upperBound - 1)
                }
            }
        }
    }

    /// Runs group `k`: the threads take its pieces in turn, each on one thread, then the split products' partials
    /// are added up; on one thread, the lanes in turn, every kernel whole (the same bits). With `times`
    /// (profiling), adds each kernel's nanoseconds, summed over its pieces, to `times[kernel]`.
    func runConcurrentGroup(_ k: Int, times: UnsafeMutablePointer<UInt64>? = nil) {
        let group = concurrentGroups[k]
        guard GEMMThreads.count > 1 else {
            for lane in group.lanes { runLane(lane, times: times) }
            return
        }
        let pieceTimes = times.map { _ in UnsafeMutablePointer<UInt64>.allocate(capacity: group.pieces.count) }
        pieceTimes?.initialize(repeating: 0, count: group.pieces.count)
        defer { pieceTimes?.deallocate() }
        groupClaims.next.store(0, ordering: .relaxed)
        // The kernels of a group touch disjoint memory (checked when it was formed), the blocks of a split product
        // disjoint partials, and `execute` only reads the plan's tables for these kinds.
        let shared = UncheckedSendable(value: (self, group, pieceTimes))
        forkJoin(iterations: Swift.min(GEMMThreads.count, group.pieces.count)) { _ in
            let (plan, group, pieceTimes) = shared.value
            GEMMThreads.withCount(1) {
                while true {
                    let next = plan.groupClaims.next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard next < group.pieces.count else { return }
                    let start = pieceTimes == nil ? 0 : PlanProfiler.now()
                    plan.runPiece(group.pieces[next], of: group)
                    if let pieceTimes { pieceTimes[next] = PlanProfiler.now() &- start }
                }
            }
        }
        for (kernel, split, partials) in group.splits {
            let start = times == nil ? 0 : PlanProfiler.now()
            guard case .matmul(let product) = steps[kernel].work else { continue }
            split.reduce(partials: groupPartials! + partials, accumulating: product.accumulating, c: address(product.c),
                         ldc: product.ldc)
            if let times { times[kernel] &+= PlanProfiler.now() &- start }
        }
        if let times, let pieceTimes {
            for (i, piece) in group.pieces.enumerated() { times[piece.kernel] &+= pieceTimes[i] }
        }
    }

    private func runPiece(_ piece: GroupPiece, of group: ConcurrentGroup) {
        guard piece.block >= 0 else {
            execute(piece.kernel)
            return
        }
        let (kernel, split, partials) = group.splits[piece.split]
        guard case .matmul(let product) = steps[kernel].work else { return }
        split.multiplyBlock(piece.block, a: address(product.a), lda: product.lda, b: address(product.b), ldb: product.ldb,
                            partials: groupPartials! + partials)
    }

    private func runLane(_ lane: [Int], times: UnsafeMutablePointer<UInt64>?) {
        for index in lane {
            let start = times == nil ? 0 : PlanProfiler.now()
            execute(index)
            if let times { times[index] &+= PlanProfiler.now() &- start }
        }
    }
}

/// The counter from which a group's threads take its pieces (one per plan; groups run one at a time).
final class GroupClaims: Sendable {
    let next = Atomic<Int>(0)
}
