import Foundation

// Profiling a compiled plan: wall time per kernel and per row-parallel segment, summed over replays.
//
// Off by default, and then a replay pays one branch per replay and one per segment kernel per part. On, every
// kernel outside a segment is timed on the replaying thread (two monotonic-clock reads, ~70 ns each here), and
// every kernel inside a segment on each part's own thread, on its own rows: a segment kernel's time is the mean
// of its parts' times, the segment's wall time is measured around the fork and join. Whether a kernel used both
// cores is read from the fork counter (`Forks`), so it reports what ran, not what the thresholds predict.

/// The timings a profiling plan accumulates (plan-owned; only the replaying thread and, for the segments'
/// per-part times, the parts of the running segment write it).
final class PlanProfiler {
    var replays = 0
    var replayNanoseconds: UInt64 = 0
    var packingNanoseconds: UInt64 = 0
    /// Wall nanoseconds of the concurrent groups, fork and join included.
    var groupNanoseconds: UInt64 = 0
    /// Per kernel: nanoseconds (for a segment kernel, summed over its parts), and forks while it ran.
    var kernelNanoseconds: [UInt64]
    var kernelForks: [Int]
    /// Per segment: wall nanoseconds around the fork and join, and forks.
    var segmentNanoseconds: [UInt64]
    var segmentForks: [Int]
    /// Each segment's per-part kernel times (`parts × kernels`), at `partOffsets[segment]`.
    let partTimes: UnsafeMutablePointer<UInt64>
    let partOffsets: [Int]
    /// Each segment's parts' start and end times in its last run (`2 × parts`, at `stampOffsets[segment]`), and per
    /// segment the summed delays: from the segment's start to each part's first kernel, and from each part's end to
    /// the join's end.
    let partStamps: UnsafeMutablePointer<UInt64>
    let stampOffsets: [Int]
    var startDelayNanoseconds: [UInt64]
    var joinWaitNanoseconds: [UInt64]
    /// Per kernel: the nanoseconds of a concurrent group's kernels, written by the thread that ran each.
    let laneTimes: UnsafeMutablePointer<UInt64>

    init(kernels: Int, segments: [(kernels: Int, parts: Int)]) {
        kernelNanoseconds = Array(repeating: 0, count: kernels)
        kernelForks = Array(repeating: 0, count: kernels)
        segmentNanoseconds = Array(repeating: 0, count: segments.count)
        segmentForks = Array(repeating: 0, count: segments.count)
        var offsets: [Int] = [], total = 0
        for segment in segments {
            offsets.append(total)
            total += segment.kernels * segment.parts
        }
        partOffsets = offsets
        stampOffsets = segments.indices.map { 2 * segments[..<$0].reduce(0) { $0 + $1.parts } }
        let stampCount = Swift.max(2 * segments.reduce(0) { $0 + $1.parts }, 1)
        partStamps = .allocate(capacity: stampCount)
        partStamps.initialize(repeating: 0, count: stampCount)
        startDelayNanoseconds = Array(repeating: 0, count: segments.count)
        joinWaitNanoseconds = Array(repeating: 0, count: segments.count)
        partTimes = .allocate(capacity: Swift.max(total, 1))
        partTimes.initialize(repeating: 0, count: Swift.max(total, 1))
        laneTimes = .allocate(capacity: Swift.max(kernels, 1))
        laneTimes.initialize(repeating: 0, count: Swift.max(kernels, 1))
    }

    deinit {
        partTimes.deallocate()
        partStamps.deallocate()
        laneTimes.deallocate()
    }

    /// Monotonic nanoseconds.
    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

extension Plan {
    /// Runs the schedule as a replay does, timing every kernel and segment into `profiler`.
    func runProfiled(_ profiler: PlanProfiler) {
        var index = 0
        while index < steps.count {
            let forks = Forks.count.load(ordering: .relaxed)
            let start = PlanProfiler.now()
            if let segment = segmentStarts[index] {
                let stamps = profiler.partStamps + profiler.stampOffsets[segment]
                runSegment(segment, times: profiler.partTimes + profiler.partOffsets[segment], stamps: stamps)
                let end = PlanProfiler.now()
                profiler.segmentNanoseconds[segment] &+= end &- start
                for part in 0..<segments[segment].parts {
                    profiler.startDelayNanoseconds[segment] &+= stamps[2 * part] &- start
                    profiler.joinWaitNanoseconds[segment] &+= end &- stamps[2 * part + 1]
                }
                profiler.segmentForks[segment] += Forks.count.load(ordering: .relaxed) - forks
                index = segments[segment].kernels.upperBound
            } else if let group = groupStarts[index] {
                // Each kernel timed on the thread that ran it, into `laneTimes`, then moved to its kernel.
                runConcurrentGroup(group, times: profiler.laneTimes)
                profiler.groupNanoseconds &+= PlanProfiler.now() &- start
                let forked = Forks.count.load(ordering: .relaxed) - forks
                for kernel in concurrentGroups[group].kernels {
                    profiler.kernelNanoseconds[kernel] &+= profiler.laneTimes[kernel]
                    profiler.laneTimes[kernel] = 0
                    profiler.kernelForks[kernel] += forked
                }
                index = concurrentGroups[group].kernels.upperBound
            } else {
                execute(index)
                profiler.kernelNanoseconds[index] &+= PlanProfiler.now() &- start
                profiler.kernelForks[index] += Forks.count.load(ordering: .relaxed) - forks
                index += 1
            }
        }
    }

    /// Whether replays time every kernel and segment (off by default).
    ///
    /// Turning it on starts a new ``profile``; turning it off stops timing and keeps the profile readable.
    /// Profiled replays compute the same values; they are slower by about two clock reads per kernel.
    public var isProfiling: Bool {
        get { profiler != nil }
        set {
            guard newValue != isProfiling else { return }
            if newValue {
                profiler = PlanProfiler(kernels: steps.count, segments: segments.map { ($0.kernels.count, $0.parts) })
                finishedProfiler = nil
            } else {
                finishedProfiler = profiler
                profiler = nil
            }
        }
    }

    /// The timings of the replays since profiling was last turned on (``isProfiling``), or `nil` when it never was.
    public var profile: PlanProfile? {
        guard let profiler = profiler ?? finishedProfiler else { return nil }
        let seconds = { (nanoseconds: UInt64) in Double(nanoseconds) * 1e-9 }
        var owner = [Int?](repeating: nil, count: steps.count)
        var kernelSeconds = profiler.kernelNanoseconds.map(seconds)
        var forked = profiler.kernelForks.map { $0 > 0 }
        for (k, segment) in segments.enumerated() {
            let times = profiler.partTimes + profiler.partOffsets[k]
            for (offset, index) in segment.kernels.enumerated() {
                owner[index] = k
                let total = (0..<segment.parts).reduce(UInt64(0)) { $0 &+ times[$1 * segment.kernels.count + offset] }
                kernelSeconds[index] = seconds(total) / Double(segment.parts)
                forked[index] = profiler.segmentForks[k] > 0
            }
        }
        let kernels = self.kernels.enumerated().map { index, kernel in
            PlanProfile.KernelTime(kernel: kernel, seconds: kernelSeconds[index], runs: profiler.replays,
                                   usedBothCores: forked[index])
        }
        let segmentTimes = segments.enumerated().map { k, segment in
            let times = profiler.partTimes + profiler.partOffsets[k]
            let busy = (0..<(segment.parts * segment.kernels.count)).reduce(UInt64(0)) { $0 &+ times[$1] }
            return PlanProfile.SegmentTime(kernels: segment.kernels, parts: segment.parts,
                                           seconds: seconds(profiler.segmentNanoseconds[k]), partSeconds: seconds(busy),
                                           startDelaySeconds: seconds(profiler.startDelayNanoseconds[k]),
                                           joinWaitSeconds: seconds(profiler.joinWaitNanoseconds[k]),
                                           runs: profiler.replays, usedBothCores: profiler.segmentForks[k] > 0)
        }
        return PlanProfile(replays: profiler.replays, replaySeconds: seconds(profiler.replayNanoseconds),
                           packingSeconds: seconds(profiler.packingNanoseconds),
                           concurrentGroupSeconds: seconds(profiler.groupNanoseconds), kernels: kernels, segments: segmentTimes)
    }
}

/// Where the replays of a compiled ``Plan`` spent their time: wall time per kernel and per row-parallel
/// segment, summed over the replays profiled (``Plan/isProfiling``).
///
/// ```swift
/// plan.isProfiling = true
/// for _ in 0..<10 { _ = plan.replay(batch) }
/// print(plan.profile!.report())
/// ```
public struct PlanProfile: Sendable {
    /// One kernel's time.
    public struct KernelTime: Sendable {
        /// The kernel (``Plan/kernels``' entry): kind, nodes, FLOPs, segment.
        public let kernel: PlanKernel
        /// Wall seconds over all replays; for a kernel inside a segment, the mean over the parts of the seconds
        /// each part spent on it (the parts run at once).
        public let seconds: Double
        /// How many times it ran (the replays profiled).
        public let runs: Int
        /// Whether it ran on more than one thread: it forked (a large product or sweep), or its segment did.
        public let usedBothCores: Bool
        /// Seconds per run.
        public var secondsPerRun: Double { runs > 0 ? seconds / Double(runs) : 0 }
        /// FLOPs per second (the kernel's FLOPs as inspection counts them, over its time).
        public var flopsPerSecond: Double { seconds > 0 ? Double(kernel.flops) * Double(runs) / seconds : 0 }
    }

    /// One row-parallel segment's time.
    public struct SegmentTime: Sendable {
        /// The kernels of the segment (indices into ``Plan/kernels``).
        public let kernels: Range<Int>
        /// The parts its rows are split into.
        public let parts: Int
        /// Wall seconds over all replays, fork and join included.
        public let seconds: Double
        /// Seconds the parts spent in the segment's kernels, summed over parts and replays: with `parts` parts at
        /// once, `partSeconds / (parts · seconds)` is how busy the cores were inside the segment.
        public let partSeconds: Double
        /// Seconds from the segment's start to each part's first kernel, summed over parts and replays: the part
        /// the replaying thread runs starts at once, the other when a worker thread wakes for it.
        public let startDelaySeconds: Double
        /// Seconds from each part's last kernel to the segment's end (the join), summed over parts and replays.
        public let joinWaitSeconds: Double
        /// How many times it ran.
        public let runs: Int
        /// Whether its parts ran on two threads at once.
        public let usedBothCores: Bool
    }

    /// The number of replays profiled.
    public let replays: Int
    /// Wall seconds inside ``Plan/replay(_:)``, over all replays (packing, kernels, copying the outputs out).
    public let replaySeconds: Double
    /// Wall seconds packing the reused weights for the GEMM, over all replays.
    public let packingSeconds: Double
    /// Wall seconds of the concurrent groups (independent kernels run at once, ``Plan/concurrentKernelGroups``),
    /// fork and join included, over all replays; their kernels' ``KernelTime/seconds`` are each thread's time.
    public let concurrentGroupSeconds: Double
    /// Every kernel of the plan once, in schedule order.
    public let kernels: [KernelTime]
    /// Every row-parallel segment once, in schedule order.
    public let segments: [SegmentTime]

    /// Wall seconds per replay.
    public var secondsPerReplay: Double { replays > 0 ? replaySeconds / Double(replays) : 0 }

    /// Wall seconds per replay of the kernels that ran on one thread, outside any segment.
    public var singleCoreSecondsPerReplay: Double {
        kernels.filter { $0.kernel.segment == nil && !$0.usedBothCores }.reduce(0) { $0 + $1.secondsPerRun }
    }
}
