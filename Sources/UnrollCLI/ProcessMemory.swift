import Foundation

/// What the operating system says about this process' memory.
enum ProcessMemory {
    /// The largest resident set size the process has had so far, in bytes (`getrusage`'s `ru_maxrss`,
    /// which Linux reports in kilobytes). It never decreases, so a run's figure includes earlier work.
    static var peakResidentBytes: Int {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
        return usage.ru_maxrss * 1024
    }
}
