import Foundation

// The text report of a plan profile. A recurrent plan has the same kernels at every time step (an MGU over 100
// steps has ~20 kernels per step, forward and backward), so the report sums kernels that do the same work (kind,
// pass, instructions, FLOPs, in a segment or not, on one core or two) into one line, sorted by time; the
// profile itself lists every kernel.

extension PlanProfile {
    /// Returns a table of where a replay's time goes: one line per kind of work (kernels doing the same work at
    /// every time step summed into one line, `×N`), sorted by time, with the share of the step, GFLOP/s and
    /// whether it ran on one core or both; above it, the segments, the packing, the kernels alone on one core and,
    /// given the step's wall seconds (`stepSeconds`, per step, measured around the same replays), the time the
    /// step spends outside the plan (loss, optimizer, data). At most `limit` lines of kernels.
    public func report(stepSeconds: Double? = nil, limit: Int = 20) -> String {
        let perReplay = secondsPerReplay
        let whole = stepSeconds ?? perReplay
        func ms(_ seconds: Double) -> String { String(format: "%.3f ms", seconds * 1e3) }
        func share(_ seconds: Double) -> String { whole > 0 ? String(format: "%.1f%%", 100 * seconds / whole) : "-" }
        var lines: [String] = []
        if let stepSeconds {
            lines.append("plan profile over \(replays) replays: step \(ms(stepSeconds)), replay \(ms(perReplay)) "
                         + "(\(share(perReplay))), outside the plan (loss, optimizer, data) \(ms(stepSeconds - perReplay)) "
                         + "(\(share(stepSeconds - perReplay)))")
        } else {
            lines.append("plan profile over \(replays) replays: replay \(ms(perReplay))")
        }
        let runs = Double(Swift.max(replays, 1))
        let segmentSeconds = segments.reduce(0) { $0 + $1.seconds } / runs
        let partSeconds = segments.reduce(0) { $0 + $1.partSeconds } / runs
        let capacity = segments.reduce(0) { $0 + $1.seconds * Double($1.parts) } / runs
        let alone = kernels.filter { $0.kernel.segment == nil }
        let single = alone.filter { !$0.usedBothCores }.reduce(0) { $0 + $1.secondsPerRun }
        let forked = alone.filter { $0.usedBothCores && $0.kernel.concurrentGroup == nil }.reduce(0) { $0 + $1.secondsPerRun }
        let grouped = alone.filter { $0.kernel.concurrentGroup != nil }
        let groupThreadSeconds = grouped.reduce(0) { $0 + $1.secondsPerRun }
        lines.append("  \(segments.count) row-parallel segments \(ms(segmentSeconds)) (\(share(segmentSeconds))), parts busy "
                     + (capacity > 0 ? String(format: "%.0f%%", 100 * partSeconds / capacity) : "-")
                     + " of their time; kernels outside segments on both cores \(ms(forked)) (\(share(forked))), "
                     + "on one core \(ms(single)) (\(share(single)))"
                     + (grouped.isEmpty ? "" : "; concurrent groups \(ms(concurrentGroupSeconds / runs)) "
                        + "(\(share(concurrentGroupSeconds / runs))), \(ms(groupThreadSeconds)) of their kernels' thread time"))
        if !segments.isEmpty {
            let starts = segments.reduce(0) { $0 + $1.startDelaySeconds } / runs
            let joins = segments.reduce(0) { $0 + $1.joinWaitSeconds } / runs
            lines.append("  inside segments, per step: parts waiting to start \(ms(starts)) (a worker waking up), parts done "
                         + "waiting for the join \(ms(joins)), summed over parts")
        }
        lines.append("  packing weights \(ms(packingSeconds / runs)) (\(share(packingSeconds / runs)))")

        struct Key: Hashable {
            var kind: PlanKernel.Kind, isBackward: Bool, instructions: [String], flops: Int, inSegment: Bool, inGroup: Bool, both: Bool
        }
        var groups: [Key: (seconds: Double, count: Int, first: PlanKernel, index: Int)] = [:]
        for (index, time) in kernels.enumerated() {
            let kernel = time.kernel
            let key = Key(kind: kernel.kind, isBackward: kernel.isBackward, instructions: kernel.instructions,
                          flops: kernel.flops, inSegment: kernel.segment != nil, inGroup: kernel.concurrentGroup != nil,
                          both: time.usedBothCores)
            let seconds = time.secondsPerRun
            if let group = groups[key] {
                groups[key] = (group.seconds + seconds, group.count + 1, group.first, group.index)
            } else {
                groups[key] = (seconds, 1, kernel, index)
            }
        }
        lines.append("      ms   share    count  kind               pass      cores    MFLOP  GFLOP/s  first kernel: nodes / instructions")
        let sorted = groups.sorted { $0.value.seconds > $1.value.seconds }
        for (key, group) in sorted.prefix(limit) {
            let flops = Double(key.flops) * Double(group.count)
            let rate = group.seconds > 0 ? flops / group.seconds * 1e-9 : 0
            let nodes = group.first.nodes.count > 6
                ? group.first.nodes.prefix(6).map(String.init).joined(separator: ",") + ",…"
                : group.first.nodes.map(String.init).joined(separator: ",")
            let detail = "#\(group.index): " + nodes + (key.instructions.isEmpty ? "" : " / " + key.instructions.joined(separator: " "))
            let cores = key.inSegment ? (key.both ? "segment" : "seg/1")
                : key.inGroup ? (key.both ? "group" : "grp/1") : (key.both ? "both" : "one")
            lines.append(String(format: "%8.3f", group.seconds * 1e3) + share(group.seconds).leftAligned(8, right: true)
                         + ("×\(group.count)").leftAligned(9, right: true) + "  "
                         + key.kind.rawValue.leftAligned(19) + (key.isBackward ? "backward  " : "forward   ")
                         + cores.leftAligned(7) + String(format: "%7.2f", flops * 1e-6) + String(format: "%9.1f", rate)
                         + "  " + detail)
        }
        if sorted.count > limit {
            let rest = sorted.dropFirst(limit).reduce(0) { $0 + $1.value.seconds }
            lines.append(String(format: "%8.3f", rest * 1e3) + share(rest).leftAligned(8, right: true)
                         + "  in \(sorted.count - limit) more kinds of kernel")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    /// The string padded with spaces to `width` characters, on the right (or on the left with `right`).
    fileprivate func leftAligned(_ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: Swift.max(0, width - count))
        return right ? padding + self : self + padding
    }
}
