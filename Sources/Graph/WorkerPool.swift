import Dispatch
import Foundation
import Kernels
import Synchronization

// The threads `forkJoin` hands work to.
//
// A compiled training step forks dozens of times (each row-parallel segment, each product split over the cores, the
// optimizer update), and the work between two forks is often well under a millisecond. Dispatch's
// `concurrentPerform` puts its worker to sleep as soon as a fork ends, and waking it again took 18 µs even with no
// gap and 30–60 µs after a gap of 0.2–2 ms on these machines (measured: the later part of a two-part fork starts
// that long after the fork). Every fork paid it twice: once as the worker's late start, once more as the caller
// waiting for it at the join.
//
// Here a worker that finishes a job keeps polling for the next one for a short while (`spinNanoseconds`), with the
// CPU's pause hint, and only then sleeps on a semaphore. Iterations are claimed from a shared counter, so the caller
// runs the iterations nobody has taken yet instead of waiting for a worker that has not woken up: a late worker
// delays nothing. Which thread runs an iteration never changes a result (the callers split their work by the
// iteration index alone), so replays stay bitwise reproducible.

/// A fork-join pool of persistent worker threads that poll briefly between jobs.
final class WorkerPool: @unchecked Sendable {
    /// The pool `forkJoin` uses: one worker fewer than the configured thread count (the caller is the other).
    static let shared = WorkerPool(workers: GEMMThreads.configuredCount - 1)

    /// How long an idle worker polls for its next job before it sleeps.
    static let spinNanoseconds: UInt64 = 250_000

    /// One fork: the body and its iterations, claimed one at a time by whoever is free.
    private final class Job: @unchecked Sendable {
        let body: (Int) -> Void
        let iterations: Int
        let next = Atomic<Int>(0)
        let finished = Atomic<Int>(0)

        init(body: @escaping (Int) -> Void, iterations: Int) {
            self.body = body
            self.iterations = iterations
        }

        /// Runs unclaimed iterations until none is left.
        func runClaimed() {
            while true {
                let iteration = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard iteration < iterations else { return }
                body(iteration)
                finished.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    /// A worker's hand-off state. `state`: idle, assigned (the caller has published a job), or running (the worker
    /// took it: the caller then waits for it to finish before the job may end).
    private final class Worker: @unchecked Sendable {
        static let idle = 0, assigned = 1, running = 2
        let state = Atomic<Int>(Worker.idle)
        /// Whether the worker is asleep (or about to sleep) on `wake`; whoever clears it owns the one wake-up.
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    private let workers: [Worker]
    /// Set while a fork runs: a fork from another thread, or from inside a job, runs its iterations on its own
    /// thread instead (the same results, since no result depends on the thread).
    private let busy = Atomic<Bool>(false)
    /// The running job, unretained (the forking caller keeps it alive until every worker has let go of it).
    private let current = Atomic<UInt>(0)

    init(workers count: Int) {
        workers = (0..<Swift.max(0, count)).map { _ in Worker() }
        for worker in workers {
            // The thread keeps the pool alive: a pool lives as long as the process (`shared` does anyway).
            let thread = Thread { self.serve(worker) }
            thread.name = "Unroll worker"
            thread.qualityOfService = .userInteractive
            thread.start()
        }
    }

    /// Runs `body(0..<iterations)` on this thread and the workers, and returns when every iteration has run.
    func run(iterations: Int, _ body: (Int) -> Void) {
        let helpers = Swift.min(workers.count, iterations - 1)
        guard helpers > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for iteration in 0..<iterations { body(iteration) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(body: body, iterations: iterations)
            current.store(UInt(bitPattern: Unmanaged.passUnretained(job).toOpaque()), ordering: .relaxed)
            for worker in workers.prefix(helpers) {
                // Sequentially consistent with the worker's `sleeping` store then `state` load: one of the two sees
                // the other's store, so a worker going to sleep either sees this job or is woken for it.
                worker.state.store(Worker.assigned, ordering: .sequentiallyConsistent)
                if worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) { worker.wake.signal() }
            }
            job.runClaimed()
            WorkerPool.wait { job.finished.load(ordering: .acquiring) == iterations }
            for worker in workers.prefix(helpers) {
                // Withdraw the job from a worker that has not taken it; wait for one that has to let go of it.
                if !worker.state.compareExchange(expected: Worker.assigned, desired: Worker.idle,
                                                 ordering: .acquiringAndReleasing).exchanged {
                    WorkerPool.wait { worker.state.load(ordering: .acquiring) == Worker.idle }
                }
            }
            current.store(0, ordering: .relaxed)
        }
        busy.store(false, ordering: .releasing)
    }

    /// A worker's life: wait for a job, take it, run what is left of it, let go of it.
    private func serve(_ worker: Worker) {
        while true {
            waitForJob(worker)
            guard worker.state.compareExchange(expected: Worker.assigned, desired: Worker.running,
                                               ordering: .acquiringAndReleasing).exchanged else { continue }
            let job = Unmanaged<Job>.fromOpaque(UnsafeRawPointer(bitPattern: current.load(ordering: .relaxed))!)
            job._withUnsafeGuaranteedRef { $0.runClaimed() }
            worker.state.store(Worker.idle, ordering: .releasing)
        }
    }

    /// Returns when a job may be assigned to `worker`: polls for `spinNanoseconds`, then sleeps until woken.
    private func waitForJob(_ worker: Worker) {
        let deadline = DispatchTime.now().uptimeNanoseconds + WorkerPool.spinNanoseconds
        var polls = 0
        while worker.state.load(ordering: .relaxed) != Worker.assigned {
            polls += 1
            if polls & 63 == 0 && DispatchTime.now().uptimeNanoseconds > deadline {
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if worker.state.load(ordering: .sequentiallyConsistent) == Worker.assigned
                    && worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                    return
                }
                // Either still idle, or the caller cleared `sleeping` and owes this worker one signal.
                worker.wake.wait()
                return
            }
            unroll_spin_pause()
        }
    }

    /// Polls `condition` with the pause hint; after ~50 µs yields the core between polls, so a caller waiting for a
    /// long iteration on a busy machine does not hold a core another process could use.
    private static func wait(until condition: () -> Bool) {
        var polls = 0
        while !condition() {
            polls += 1
            if polls < 20_000 { unroll_spin_pause() } else { sched_yield() }
        }
    }
}
