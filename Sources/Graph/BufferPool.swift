import Synchronization

/// A size-class pool of 64-byte-aligned float buffers.
///
/// glibc hands large freed blocks back to the operating system, so a fresh tensor of 16 KB or more
/// page-faults on first touch (about 10 µs at 16 KB, 100 µs at 200 KB). Every time step of an unrolled
/// network allocates the same sizes again, so recycling them by power-of-two class makes allocation
/// nearly free.
enum BufferPool {
    /// Buffers of at most this many floats go through the pool; larger ones are allocated directly.
    static let largestPooled = 1 << 26
    /// The most bytes the pool keeps idle before it frees instead of caching.
    static let idleByteLimit = 1 << 31

    /// Free buffers per power-of-two class, as addresses (plain integers are Sendable; the pool owns them).
    private struct State: ~Copyable {
        var free: [[UInt]] = Array(repeating: [], count: 64)
        var idleBytes = 0
        /// Bytes handed out and not yet released, and the most since the last reset (``TensorMemory``).
        var liveBytes = 0
        var peakBytes = 0
        /// Buffers handed out since the process started (reused or not): what "allocates nothing" is checked by.
        var allocations = 0
    }

    private static let state = Mutex(State())

    /// Returns the capacity (in floats) of the class that holds `count` floats.
    @inline(__always)
    static func capacity(for count: Int) -> Int {
        count <= 16 ? 16 : 1 << (Int.bitWidth - (count - 1).leadingZeroBitCount)
    }

    /// Returns a buffer of at least `count` floats and its capacity; its contents are undefined.
    static func allocate(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let capacity = capacity(for: count)
        let pooled = capacity <= largestPooled
        let reused: UInt? = state.withLock { state in
            state.liveBytes += capacity * 4
            state.allocations += 1
            state.peakBytes = Swift.max(state.peakBytes, state.liveBytes)
            guard pooled, let address = state.free[capacity.trailingZeroBitCount].popLast() else { return nil }
            state.idleBytes -= capacity * 4
            return address
        }
        if let reused, let pointer = UnsafeMutablePointer<Float>(bitPattern: reused) { return (pointer, capacity) }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64)
        return (raw.bindMemory(to: Float.self, capacity: capacity), capacity)
    }

    /// Gives a buffer obtained from `allocate` back to the pool.
    static func release(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        let pooled = capacity <= largestPooled
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { state -> Bool in
            state.liveBytes -= capacity * 4
            guard pooled, state.idleBytes + capacity * 4 <= idleByteLimit else { return false }
            state.free[capacity.trailingZeroBitCount].append(address)
            state.idleBytes += capacity * 4
            return true
        }
        if !kept { UnsafeMutableRawPointer(pointer).deallocate() }
    }

    /// The bytes in use and the most in use since the last ``resetPeak()``.
    static var usage: (live: Int, peak: Int) { state.withLock { ($0.liveBytes, $0.peakBytes) } }

    /// Starts a new peak from the bytes in use now.
    static func resetPeak() { state.withLock { $0.peakBytes = $0.liveBytes } }

    /// Buffers handed out so far.
    static var allocationCount: Int { state.withLock { $0.allocations } }
}

/// How much tensor memory the process holds: every buffer behind a ``Tensor`` (and a ``PackedMatrix``) counted
/// by its size class, from allocation until its last owner releases it. Benchmarks read the peak of a training
/// step this way.
package enum TensorMemory {
    /// Bytes of tensor storage in use now.
    package static var liveBytes: Int { BufferPool.usage.live }
    /// The most bytes in use at once since the last ``resetPeak()`` (or since the process started).
    package static var peakBytes: Int { BufferPool.usage.peak }
    /// Starts a new peak from the bytes in use now.
    package static func resetPeak() { BufferPool.resetPeak() }
    /// Tensor buffers handed out since the process started (from the pool or fresh).
    package static var allocationCount: Int { BufferPool.allocationCount }
}

/// The reference-counted buffer behind one or more tensors.
final class TensorStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    /// Whether the buffer is this object's to free (a compiled plan lends views of its arena, which it owns).
    private let ownsBuffer: Bool

    init(count: Int) {
        (pointer, capacity) = BufferPool.allocate(count)
        ownsBuffer = true
    }

    /// Wraps memory owned elsewhere, which must outlive every tensor made from it.
    init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int) {
        self.pointer = pointer
        capacity = count
        ownsBuffer = false
    }

    deinit { if ownsBuffer { BufferPool.release(pointer, capacity: capacity) } }
}
