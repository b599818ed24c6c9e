import Dispatch

/// A value shared with worker threads that only read it or write disjoint parts of what it points to.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
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
        DispatchQueue.concurrentPerform(iterations: threads) { part in
            let start = part * chunk
            shared.value(start..<Swift.min(count, start + chunk))
        }
    }
}
