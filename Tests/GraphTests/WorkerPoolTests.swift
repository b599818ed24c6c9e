import Dispatch
import Foundation
@testable import Graph
import Synchronization
import XCTest

/// `forkJoin` hands work to ``WorkerPool``: every iteration must run exactly once and be finished when the fork
/// returns, whoever runs it, including forks from inside a fork, from several threads at once, and after the
/// worker has gone to sleep.
final class WorkerPoolTests: XCTestCase {
    /// Runs `iterations` through a fork, each adding one to its own counter, and returns the counters.
    private static func counts(pool: WorkerPool, iterations: Int, body: @escaping @Sendable (Int) -> Void = { _ in }) -> [Int] {
        let counters = UnsafeMutablePointer<Int>.allocate(capacity: iterations)
        counters.initialize(repeating: 0, count: iterations)
        defer { counters.deallocate() }
        let shared = UncheckedSendable(value: counters)
        pool.run(iterations: iterations) { iteration in
            body(iteration)
            shared.value[iteration] += 1
        }
        return Array(UnsafeBufferPointer(start: counters, count: iterations))
    }

    func testEveryIterationRunsOnceInManyForksInARow() {
        for workers in [1, 3] {
            let pool = WorkerPool(workers: workers)
            for round in 0..<3_000 {
                let iterations = 1 + round % 9
                XCTAssertEqual(Self.counts(pool: pool, iterations: iterations), Array(repeating: 1, count: iterations),
                               "\(workers) workers, round \(round)")
            }
        }
    }

    func testForksFromInsideAForkRunInline() {
        let pool = WorkerPool(workers: 1)
        let inner = Mutex<[Int]>([])
        XCTAssertEqual(Self.counts(pool: pool, iterations: 2) { outer in
            let found = Self.counts(pool: pool, iterations: 3)
            inner.withLock { $0.append(outer * 10 + found.reduce(0, +)) }
        }, [1, 1])
        XCTAssertEqual(inner.withLock { $0.sorted() }, [3, 13])
    }

    func testForksFromSeveralThreadsAtOnce() {
        let pool = WorkerPool(workers: 1)
        let wrong = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for round in 0..<500 {
                let iterations = 2 + (round + thread) % 5
                if Self.counts(pool: pool, iterations: iterations) != Array(repeating: 1, count: iterations) {
                    wrong.add(1, ordering: .relaxed)
                }
            }
        }
        XCTAssertEqual(wrong.load(ordering: .relaxed), 0)
    }

    /// After a pause longer than its polling time the worker sleeps; the next forks must still complete, and the
    /// worker, woken, must take part in some of them (each iteration lasts far longer than a wake-up).
    func testASleepingWorkerIsWokenAndTakesPart() {
        let pool = WorkerPool(workers: 1)
        let onWorker = Atomic<Int>(0)
        for _ in 0..<20 {
            Thread.sleep(forTimeInterval: 0.002)
            let caller = pthread_self()
            XCTAssertEqual(Self.counts(pool: pool, iterations: 2) { _ in
                if pthread_equal(pthread_self(), caller) == 0 { onWorker.add(1, ordering: .relaxed) }
                Thread.sleep(forTimeInterval: 0.003)
            }, [1, 1])
        }
        XCTAssertGreaterThan(onWorker.load(ordering: .relaxed), 0)
    }

    /// A pool without workers runs every iteration on the caller, in order.
    func testAPoolWithoutWorkersRunsInOrder() {
        let pool = WorkerPool(workers: 0)
        let order = Mutex<[Int]>([])
        pool.run(iterations: 5) { iteration in order.withLock { $0.append(iteration) } }
        XCTAssertEqual(order.withLock { $0 }, [0, 1, 2, 3, 4])
    }
}
