import Foundation
import Graph
import Layers
import Train

// `unroll bench --truncated K1[,K2]`: the workload's recurrent layer returning every step, a Dense head on each
// step, and one `fit` epoch of truncated BPTT(K1, K2) over one batch per timed step, so that windows (compiled,
// the carried state fed to one plan per window shape, or eager with --eager) are what is timed.

extension BenchCommand {
    /// The `(k1, k2)` of `--truncated K1[,K2]`, or `nil` when it is absent.
    static func truncation(_ arguments: Arguments) throws -> (k1: Int, k2: Int)? {
        guard let text = arguments.string("truncated") else { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard (1...2).contains(parts.count), let k1 = parts[0], k1 >= 1, let k2 = parts.count == 2 ? parts[1] : k1, k2 >= k1 else {
            throw UsageError("option '--truncated' expects K1 or K1,K2 with 1 ≤ K1 ≤ K2, got '\(text)'", command: "unroll bench")
        }
        return (k1, k2)
    }

    /// Times `steps` epochs of truncated BPTT on one batch of the workload after `warmup` untimed ones, and prints
    /// one row: milliseconds per epoch (median, min) and processor milliseconds per epoch (min, all threads).
    static func runTruncated(_ workload: Workload, k1: Int, k2: Int, steps: Int, warmup: Int, eager: Bool,
                             output: inout some TextOutputStream) throws {
        guard case .builtIn(let cell) = workload.architecture else {
            throw UsageError("--truncated runs the built-in cells' workloads, not \(workload.name)", command: "unroll bench")
        }
        Initializers.resetSeedSequence(to: 0xBE7C)
        let model = Sequential([cell.layer(hiddenSize: workload.hiddenSize, inputShape: [workload.timeSteps, workload.featureCount],
                                           returnSequences: true, isBidirectional: false),
                                Dense(outputSize: workload.outputSize)], name: workload.name)
        try model.compile(loss: .meanSquaredError, optimizer: Adam(), jitCompile: !eager)
        var generator = SeededGenerator(seed: 42)
        let x = Tensor.randomUniform([workload.batchSize, workload.timeSteps, workload.featureCount], in: -1...1,
                                     generator: &generator)
        let y = Tensor.randomUniform([workload.batchSize, workload.timeSteps, workload.outputSize], in: -1...1,
                                     generator: &generator)
        let epoch = {
            _ = try model.fit(x, y, epochs: 1, batchSize: workload.batchSize, shuffle: false, verbose: .silent,
                          truncatedBPTTSteps: k1, truncatedBPTTBackwardSteps: k2)
        }
        for _ in 0..<warmup { try epoch() }
        let clock = ContinuousClock()
        var wall: [Double] = [], processor: [Double] = []
        for _ in 0..<steps {
            let processorStart = ProcessMemory.processorSeconds
            let elapsed = try clock.measure { try epoch() }
            processor.append((ProcessMemory.processorSeconds - processorStart) * 1e3)
            wall.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        let median = wall.sorted()[wall.count / 2]
        print("\(workload.name) \(workload.text), BPTT(\(k1), \(k2)), \(eager ? "eager" : "compiled (\(model.tracedPlanCount) plans)"): "
              + String(format: "%.2f ms per epoch (median), min %.2f ms, processor %.2f ms per epoch (min, all threads)",
                       median, wall.min() ?? 0, processor.min() ?? 0), to: &output)
    }
}
