import Synchronization

/// A value shared with worker threads that only read it or write disjoint parts of what it points to.
package struct UncheckedSendable<Value>: @unchecked Sendable {
    /// The shared value.
    package let value: Value

    /// Wraps `value`; the caller vouches that the threads it reaches never write the same memory.
    package init(value: Value) {
        self.value = value
    }
}

/// Splits `0..<count` into one contiguous range per thread and runs `body` on each, when the work is large
/// enough to pay for the hand-off (about half a microsecond); otherwise runs it once on this thread.
///
/// Element-wise kernels use it so the second core is not idle between matrix products. The split depends
/// only on `count` and the thread count, so results are the same on every run.
@inline(__always)
func forEachChunk(_ count: Int, minimumPerThread: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    let threads = Swift.min(GEMMThreads.count, count / minimumPerThread)
    guard threads > 1 else {
        body(0..<count)
        return
    }
    withoutActuallyEscaping(body) { escaping in
        let shared = UncheckedSendable(value: escaping)
        let chunk = (count + threads - 1) / threads
        forkJoin(iterations: threads) { part in
            let start = part * chunk
            shared.value(start..<Swift.min(count, start + chunk))
        }
    }
}

/// The number of times work has been handed to more than one thread: a plan's profile reads it around each
/// kernel to tell the kernels that used both cores from those that ran on one.
enum Forks {
    static let count = Atomic<Int>(0)
}

/// Runs `body` for `0..<iterations` on this thread and the worker threads (``WorkerPool``) and waits for all of
/// them, counting the fork in ``Forks`` (one relaxed atomic add). One iteration runs on this thread, with no hand-off.
@inline(__always)
package func forkJoin(iterations: Int, _ body: @Sendable (Int) -> Void) {
    guard iterations > 1 else {
        if iterations == 1 { body(0) }
        return
    }
    Forks.count.add(1, ordering: .relaxed)
    WorkerPool.shared.run(iterations: iterations, body)
}
