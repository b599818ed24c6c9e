import Foundation

/// What the operating system says about this process' memory and processor time.
enum ProcessMemory {
    /// The largest resident set size the process has had so far, in bytes (`getrusage`'s `ru_maxrss`,
    /// which Linux reports in kilobytes). It never decreases, so a run's figure includes earlier work.
    static var peakResidentBytes: Int {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        return usage.ru_maxrss * 1024
    }

    /// The processor time this process has used so far, all threads, user and system, in seconds
    /// (`getrusage`): on a shared machine it moves far less with other processes' load than wall time.
    static var processorSeconds: Double {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
