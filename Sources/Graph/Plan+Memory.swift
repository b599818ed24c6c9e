// The memory plan: liveness over the schedule, then one arena with best-fit offsets (TFLite's arena planner,
// XLA's buffer assignment): a buffer's bytes are reused as soon as its last reader has run.

extension Plan {
    /// Floats per arena slot alignment (64 bytes, a cache line and an AVX-512 vector).
    static let alignment = 16

    /// Computes every buffer's lifetime and gives every arena buffer an offset; sets the arena's size.
    func planMemory() {
        for (index, step) in steps.enumerated() {
            for buffer in step.reads + step.writes {
                storage[buffer].first = min(storage[buffer].first, index)
                storage[buffer].last = max(storage[buffer].last, index)
            }
        }
        // What the caller reads back lives to the end.
        for location in outputLocations.map(\.0) + gradientLocations.compactMap(\.0) {
            storage[location.buffer].last = steps.count
            storage[location.buffer].first = min(storage[location.buffer].first, steps.count)
        }
        extendLifetimesOverSegments()
        extendLifetimesOverConcurrentGroups()
        let arenaBuffers = storage.indices.filter { storage[$0].kind == .arena && storage[$0].last >= 0 }
            .sorted { (storage[$0].count, storage[$1].first) > (storage[$1].count, storage[$0].first) }
        // Placed buffers ordered by offset, so each new one scans the gaps between the live ones.
        var placed: [Int] = []
        var top = 0
        for b in arenaBuffers {
            let size = (storage[b].count + Plan.alignment - 1) / Plan.alignment * Plan.alignment
            var best: (offset: Int, waste: Int)?
            var cursor = 0
            for other in placed where storage[other].first <= storage[b].last && storage[b].first <= storage[other].last {
                let gap = storage[other].offset - cursor
                if gap >= size && (best == nil || gap - size < best!.waste) { best = (cursor, gap - size) }
                cursor = max(cursor, storage[other].offset + (storage[other].count + Plan.alignment - 1) / Plan.alignment * Plan.alignment)
            }
            let offset = best?.offset ?? cursor
            storage[b].offset = offset
            top = max(top, offset + size)
            let position = placed.firstIndex { storage[$0].offset > offset } ?? placed.count
            placed.insert(b, at: position)
        }
        arenaCount = top
    }
}
