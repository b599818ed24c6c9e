// The memory plan: liveness over the schedule, then one arena with best-fit offsets (TFLite's arena planner,
// XLA's buffer assignment): a buffer's bytes are reused as soon as its last reader has run.

extension Plan {
    /// Floats per arena slot alignment (64 bytes, a cache line and an AVX-512 vector).
    static let alignment = 16

    /// Computes every buffer's lifetime and gives every arena buffer an offset; sets the arena's size.
    func planMemory() {
        for (index, step) in steps.enumerated() {
            for buffer in step.reads + step.writes {
                buffers[buffer].first = min(buffers[buffer].first, index)
                buffers[buffer].last = max(buffers[buffer].last, index)
            }
        }
        // What the caller reads back lives to the end.
        for location in outputLocations.map(\.0) + gradientLocations.compactMap(\.0) {
            buffers[location.buffer].last = steps.count
            buffers[location.buffer].first = min(buffers[location.buffer].first, steps.count)
        }
        let arenaBuffers = buffers.indices.filter { buffers[$0].kind == .arena && buffers[$0].last >= 0 }
            .sorted { (buffers[$0].count, buffers[$1].first) > (buffers[$1].count, buffers[$0].first) }
        // Placed buffers ordered by offset, so each new one scans the gaps between the live ones.
        var placed: [Int] = []
        var top = 0
        for b in arenaBuffers {
            let size = (buffers[b].count + Plan.alignment - 1) / Plan.alignment * Plan.alignment
            var best: (offset: Int, waste: Int)?
            var cursor = 0
            for other in placed where buffers[other].first <= buffers[b].last && buffers[b].first <= buffers[other].last {
                let gap = buffers[other].offset - cursor
                if gap >= size && (best == nil || gap - size < best!.waste) { best = (cursor, gap - size) }
                cursor = max(cursor, buffers[other].offset + (buffers[other].count + Plan.alignment - 1) / Plan.alignment * Plan.alignment)
            }
            let offset = best?.offset ?? cursor
            buffers[b].offset = offset
            top = max(top, offset + size)
            let position = placed.firstIndex { buffers[$0].offset > offset } ?? placed.count
            placed.insert(b, at: position)
        }
        arenaCount = top
    }
}
