import Foundation
import Graph
import Layers
import Train

/// Times training steps of fixed workloads: forward, backward through time and an Adam update per step.
enum BenchCommand: Subcommand {
    static let name = "bench"
    static let abstract = "Time training steps of the standard workloads (ms per step)."
    static let usage = "[OPTIONS]"
    static let discussion = """
        Each step is model.trainOnBatch on one batch of random data from a fixed seed: the forward pass,
        backpropagation through time and an Adam update, with a mean squared error on a Dense head applied
        to the last hidden state. Warm-up steps are excluded; the median over the timed steps is reported.

        Useful work is the matrix products of one step, counted from a recorded tape: 2·m·n·k per product
        forward, and once more for each of its inputs that needs a gradient. GFLOP/s is that over the time
        per step (the --stat statistic), and "of peak" divides it by a pure fused-multiply-add loop run on
        the same threads just before the workload's timed steps.

        Memory: "kept" is what the training tape holds for the backward pass (per time step), "peak" adds the
        largest segment a checkpointing layer rebuilds during backward, "tensors MB" is the most tensor memory
        in use at once during a step (weights, gradients and optimizer state included), and "max RSS" is the
        process' peak resident memory so far (getrusage), which never decreases: in a sweep, list the lengths
        in rising order. Without checkpointing, gru-long keeps about 0.26 MB per time step (T = 100000 would
        need ~26 GB). The processor time per step (all threads, getrusage) printed under each row moves far
        less than wall time when other processes share the cores: compare lengths with it on a busy machine.

        Profile (--profile): after the timed steps, as many steps again replay the plan with every kernel timed
        (Plan.isProfiling; about two clock reads per kernel, so these steps are a little slower). The report
        gives the step's wall time split into the replay and what lies outside the plan (loss, optimizer, data),
        the row-parallel segments and how busy their parts kept the cores, the kernels outside segments that
        forked onto both cores and those that ran on one, and one line per kind of kernel (the same work at
        every time step summed, ×N) sorted by time: share of the step, kind, pass, MFLOP, GFLOP/s, cores
        ("segment": split by rows inside a segment, "both": forked, "one": the other core idle).

        Workloads ([batch, time, features]; custom-mgu and gru-custom use cells written from graph nodes
        outside the library, as a user would):
        """ + "\n" + Workload.all.map { "  " + $0.name.padding(toLength: 11, withPad: " ", startingAt: 0) + $0.text }
        .joined(separator: "\n")
    static let options: [OptionSpecification] = [
        .option("workload", "NAME", "Run only this workload: \(Workload.all.map(\.name).joined(separator: ", "))."),
        .option("steps", "N", "Timed steps per workload (default 10)."),
        .option("warmup", "N", "Untimed steps first (default 2)."),
        .option("stat", "KIND", "median (default) or min: the statistic --json reports as msPerStep."),
        .option("sequence-length", "N[,N...]", "Override the 1000 time steps of gru-long and gru-custom; a list runs "
                + "them once per length (a sweep such as 1000,10000,100000)."),
        .option("checkpointing", "MODE", "Recurrent layers keep every step (none, the default), every ~√T-th state "
                + "(auto) or every N-th, and recompute the rest in backward."),
        .option("truncated", "K1[,K2]", "Time truncated BPTT(K1, K2) instead: the recurrent layer returns every step, "
                + "a Dense head scores each, and a timed step is one fit epoch over one batch (ms per epoch)."),
        .flag("eager", "Run every training step eagerly on a tape (compile(jitCompile: false)); by default steps replay "
              + "a compiled plan, whose arena and bytes kept for backward are reported under each row."),
        .flag("profile", "Then run as many steps again with the compiled plan timing every kernel, and print where a step's "
              + "time goes under each row (see below); with --json, the totals as fields."),
        .flag("json", "Print one JSON object per line: {\"workload\": NAME, \"msPerStep\": X, ...}."),
        .flag("node-overhead", "Also time the tape's bookkeeping: µs per recorded node on tiny tensors."),
    ]

    /// The timings of one workload, in milliseconds per step.
    struct Measurement {
        let workload: Workload
        let milliseconds: [Double]
        /// Processor time of each timed step, all threads, in milliseconds (steadier than wall time under load).
        var processorMilliseconds: [Double] = []
        let parameterCount: Int
        /// Scalars the training tape kept for the backward pass (graph inspection).
        let tapeScalarCount: Int
        /// The most scalars held for the backward pass at once, with a checkpointed segment being rebuilt.
        let peakTapeScalarCount: Int
        /// The process' peak resident memory after the run, in bytes.
        let peakResidentBytes: Int
        /// The matrix products of one training step, forward and backward (``Tape/matrixProductFLOPs``).
        let usefulFLOPs: Int
        /// The most tensor memory in use at once during a timed step (``TensorMemory``).
        let peakTensorBytes: Int
        /// The fused-multiply-add peak measured just before the timed steps, in GFLOP/s (`nil` without AVX2 + FMA).
        let peakGFLOPS: Double?
        /// The compiled plan's arena and the bytes of forward values its backward kernels read (`nil` when eager).
        var plan: (arenaBytes: Int, bytesKeptForBackward: Int)? = nil
        /// The plan's profile over the profiled steps (`--profile`) and their mean wall seconds per step.
        var profile: (profile: PlanProfile, stepSeconds: Double)? = nil

        /// Scalars kept per time step.
        var tapeScalarsPerTimeStep: Int { tapeScalarCount / workload.timeSteps }

        var median: Double {
            let sorted = milliseconds.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }

        /// Milliseconds per step by the chosen statistic.
        func milliseconds(_ statistic: String) -> Double { statistic == "min" ? (milliseconds.min() ?? 0) : median }

        /// Useful GFLOP/s at `ms` milliseconds per step.
        func gflops(atMilliseconds ms: Double) -> Double { ms > 0 ? Double(usefulFLOPs) / (ms * 1e-3) * 1e-9 : 0 }
    }

    /// Returns µs per node of a 1,000-node chain of `tanh(x + c)` on `[2]` tensors: forward only, and
    /// forward + backward (the best of several rounds, so the tape's bookkeeping is what is measured).
    static func nodeOverhead() -> (forward: Double, forwardBackward: Double) {
        let a = Tensor([1, 2]), c = Tensor([0.5, 0.25])
        let clock = ContinuousClock()
        func best(backward: Bool) -> Double {
            var fastest = Double.infinity
            for _ in 0..<20 {
                let elapsed = clock.measure {
                    for _ in 0..<10 {
                        let tape = Tape()
                        var x = tape.variable(a)
                        let constant = tape.constant(c)
                        for _ in 0..<500 { x = tanh(x + constant) }
                        if backward { tape.backward(from: x.sum()) }
                    }
                }
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                fastest = min(fastest, seconds / 10_000 * 1e6)
            }
            return fastest
        }
        return (best(backward: false), best(backward: true))
    }

    /// Builds the workload's model and data and times `steps` training steps after `warmup` untimed ones.
    static func measure(_ workload: Workload, steps: Int, warmup: Int, checkpointing: Checkpointing = .none,
                        eager: Bool = false, profiling: Bool = false) throws -> Measurement {
        Initializers.resetSeedSequence(to: 0xBE7C)
        let model = workload.makeModel()
        try model.compile(loss: .meanSquaredError, optimizer: Adam(), jitCompile: !eager)
        var generator = SeededGenerator(seed: 42)
        let x = Tensor.randomUniform([workload.batchSize, workload.timeSteps, workload.featureCount], in: -1...1,
                                     generator: &generator)
        let y = Tensor.randomUniform([workload.batchSize, workload.outputSize], in: -1...1, generator: &generator)
        // Counted before checkpointing hides the products inside checkpoint nodes (recomputation is not useful work).
        let flops = usefulFLOPs(of: model, x, y)
        for case let layer as any CheckpointingLayer in model.layers { layer.checkpointing = checkpointing }
        for _ in 0..<warmup { try model.trainOnBatch(x, y) }
        let peakGFLOPS = FMAPeak.measure()
        let clock = ContinuousClock()
        var timings: [Double] = []
        var peakTensorBytes = 0
        var processor: [Double] = []
        for _ in 0..<steps {
            TensorMemory.resetPeak()
            let processorStart = ProcessMemory.processorSeconds
            let elapsed = try clock.measure { try model.trainOnBatch(x, y) }
            processor.append((ProcessMemory.processorSeconds - processorStart) * 1e3)
            peakTensorBytes = max(peakTensorBytes, TensorMemory.peakBytes)
            timings.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        let plan = model.compiledTrainingPlan(inputShape: x.shape, targetShape: y.shape)
        // A replay's values and gradients live in an arena allocated once, outside tensor storage: count it.
        peakTensorBytes += plan.map { $0.arenaBytes + $0.packedBytes } ?? 0
        var measurement = Measurement(workload: workload, milliseconds: timings, parameterCount: model.parameterCount,
                                      tapeScalarCount: model.lastTapeScalarCount,
                                      peakTapeScalarCount: model.lastTapePeakScalarCount,
                                      peakResidentBytes: ProcessMemory.peakResidentBytes, usefulFLOPs: flops,
                                      peakTensorBytes: peakTensorBytes, peakGFLOPS: peakGFLOPS)
        measurement.plan = plan.map { ($0.arenaBytes, $0.bytesKeptForBackward) }
        measurement.processorMilliseconds = processor
        if profiling, let plan {
            plan.isProfiling = true
            let elapsed = try clock.measure { for _ in 0..<steps { try model.trainOnBatch(x, y) } }
            plan.isProfiling = false
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            measurement.profile = plan.profile.map { ($0, seconds / Double(steps)) }
        }
        return measurement
    }

    /// The matrix-product FLOPs of one training step, counted on a tape that records the step's forward pass
    /// and loss (the backward products are those the recorded products imply).
    ///
    /// A long sequence is counted on two short prefixes and the line through them extended: recording all of
    /// it would hold every step's values (about 26 GB for gru-long at T = 100,000), and every recurrent step
    /// has the same products.
    static func usefulFLOPs(of model: Sequential, _ x: Tensor, _ y: Tensor) -> Int {
        func count(_ x: Tensor) -> Int {
            let tape = Tape()
            _ = Loss.meanSquaredError(model(tape.constant(x)), tape.constant(y))
            let (forward, backward) = tape.matrixProductFLOPs
            return forward + backward
        }
        let steps = x.rank == 3 ? x.shape[1] : 0
        guard steps > 16, y.rank == 2 else { return count(x) }
        let (short, long) = (count(x.slice(along: 1, 0..<8)), count(x.slice(along: 1, 0..<16)))
        return short + (long - short) / 8 * (steps - 8)
    }

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let steps = try arguments.integer("steps", default: 10, in: 1...1_000_000)
        let warmup = try arguments.integer("warmup", default: 2, in: 0...1_000_000)
        let names = Workload.all.map(\.name)
        var workloads = Workload.all
        if arguments.isSet("workload") {
            let name = try arguments.choice("workload", from: names, default: names[0])
            workloads = workloads.filter { $0.name == name }
        }
        if let lengths = try sequenceLengths(arguments) {
            workloads = workloads.flatMap { workload in
                guard workload.name == "gru-long" || workload.name == "gru-custom" else { return [workload] }
                return lengths.map { length in
                    var changed = workload
                    changed.timeSteps = length
                    return changed
                }
            }
        }
        let checkpointing = try checkpointingMode(arguments)
        let isJSON = arguments.isSet("json")
        let statistic = try arguments.choice("stat", from: ["median", "min"], default: "median")
        if arguments.isSet("node-overhead") {
            let (forward, both) = nodeOverhead()
            if isJSON {
                print("{\"workload\": \"node-overhead\", \"forwardMicrosecondsPerNode\": \(String(format: "%.3f", forward)), "
                      + "\"forwardBackwardMicrosecondsPerNode\": \(String(format: "%.3f", both))}", to: &output)
            } else {
                print(String(format: "tape overhead on [2]-element tensors: %.3f µs per node forward, %.3f µs forward + backward",
                             forward, both), to: &output)
            }
        }
        if let (k1, k2) = try truncation(arguments) {
            for workload in workloads {
                try runTruncated(workload, k1: k1, k2: k2, steps: steps, warmup: warmup, eager: arguments.isSet("eager"),
                                 output: &output)
            }
            return
        }
        if !isJSON {
            print("ms per training step (forward + backward through time + Adam), median and min of \(steps) after "
                  + "\(warmup) warm-up; GFLOP/s of the matrix products at the \(statistic), against a fused-multiply-add "
                  + "loop on \(GEMMThreads.count) threads", to: &output)
            print("workload".padding(toLength: 11, withPad: " ", startingAt: 0)
                  + "model".padding(toLength: 45, withPad: " ", startingAt: 0)
                  + "params".leftPadded(to: 10) + "ms/step".leftPadded(to: 11) + "min".leftPadded(to: 10)
                  + "GFLOP/s".leftPadded(to: 9) + "of peak".leftPadded(to: 9)
                  + "kept KB/step".leftPadded(to: 14) + "kept MB".leftPadded(to: 10) + "peak MB".leftPadded(to: 10)
                  + "tensors MB".leftPadded(to: 12) + "max RSS MB".leftPadded(to: 12), to: &output)
        }
        for workload in workloads {
            let measurement = try measure(workload, steps: steps, warmup: warmup, checkpointing: checkpointing,
                                          eager: arguments.isSet("eager"), profiling: arguments.isSet("profile"))
            let gflops = measurement.gflops(atMilliseconds: measurement.milliseconds(statistic))
            let fraction = measurement.peakGFLOPS.map { gflops / $0 }
            if isJSON {
                var fields = ["\"workload\": \"\(workload.name)\"",
                              "\"msPerStep\": \(String(format: "%.4f", measurement.milliseconds(statistic)))",
                              "\"timeSteps\": \(workload.timeSteps)",
                              "\"usefulGFLOPPerStep\": \(String(format: "%.4f", Double(measurement.usefulFLOPs) * 1e-9))",
                              "\"gflops\": \(String(format: "%.2f", gflops))"]
                if let peak = measurement.peakGFLOPS, let fraction {
                    fields.append("\"fmaPeakGFLOPS\": \(String(format: "%.1f", peak))")
                    fields.append("\"fractionOfPeak\": \(String(format: "%.4f", fraction))")
                }
                fields.append("\"tapeBytesPerTimeStep\": \(4 * measurement.tapeScalarsPerTimeStep)")
                fields.append("\"tapeBytesKept\": \(4 * measurement.tapeScalarCount)")
                fields.append("\"tapeBytesPeak\": \(4 * measurement.peakTapeScalarCount)")
                fields.append("\"peakTensorBytes\": \(measurement.peakTensorBytes)")
                fields.append("\"peakResidentBytes\": \(measurement.peakResidentBytes)")
                fields.append("\"processorMsPerStep\": \(String(format: "%.4f", measurement.processorMilliseconds.min() ?? 0))")
                if let plan = measurement.plan {
                    fields.append("\"planArenaBytes\": \(plan.arenaBytes)")
                    fields.append("\"planBytesKeptForBackward\": \(plan.bytesKeptForBackward)")
                }
                if let (profile, stepSeconds) = measurement.profile {
                    fields.append("\"profiledMsPerStep\": \(String(format: "%.4f", stepSeconds * 1e3))")
                    fields.append("\"profiledReplayMsPerStep\": \(String(format: "%.4f", profile.secondsPerReplay * 1e3))")
                    fields.append("\"profiledSingleCoreMsPerStep\": \(String(format: "%.4f", profile.singleCoreSecondsPerReplay * 1e3))")
                }
                print("{" + fields.joined(separator: ", ") + "}", to: &output)
            } else {
                print(workload.name.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + workload.text.padding(toLength: 45, withPad: " ", startingAt: 0)
                      + String(measurement.parameterCount).leftPadded(to: 10)
                      + String(format: "%.3f", measurement.median).leftPadded(to: 11)
                      + String(format: "%.3f", measurement.milliseconds.min() ?? 0).leftPadded(to: 10)
                      + String(format: "%.1f", gflops).leftPadded(to: 9)
                      + (fraction.map { String(format: "%.0f%%", 100 * $0) } ?? "-").leftPadded(to: 9)
                      + String(format: "%.1f", Double(4 * measurement.tapeScalarsPerTimeStep) / 1024).leftPadded(to: 14)
                      + String(format: "%.1f", Double(4 * measurement.tapeScalarCount) / 1_048_576).leftPadded(to: 10)
                      + String(format: "%.1f", Double(4 * measurement.peakTapeScalarCount) / 1_048_576).leftPadded(to: 10)
                      + String(format: "%.1f", Double(measurement.peakTensorBytes) / 1_048_576).leftPadded(to: 12)
                      + String(format: "%.0f", Double(measurement.peakResidentBytes) / 1_048_576).leftPadded(to: 12),
                      to: &output)
                if let plan = measurement.plan {
                    print("           compiled plan: arena \(String(format: "%.1f", Double(plan.arenaBytes) / 1_048_576)) MB, "
                          + "kept for backward \(String(format: "%.1f", Double(plan.bytesKeptForBackward) / 1_048_576)) MB "
                          + "(the kept and peak columns are the traced tape's)", to: &output)
                }
                if let peak = measurement.peakGFLOPS {
                    print("           FMA peak \(String(format: "%.1f", peak)) GFLOP/s; "
                          + "\(String(format: "%.3f", Double(measurement.usefulFLOPs) * 1e-9)) GFLOP of matrix products per step; "
                          + "processor time \(String(format: "%.1f", measurement.processorMilliseconds.min() ?? 0)) ms per step "
                          + "(min, all threads)", to: &output)
                }
                if let (profile, stepSeconds) = measurement.profile {
                    print(profile.report(stepSeconds: stepSeconds).split(separator: "\n").map { "           " + $0 }
                        .joined(separator: "\n"), to: &output)
                }
            }
        }
    }

    /// The lengths of `--sequence-length N[,N...]`, or `nil` when it is absent.
    static func sequenceLengths(_ arguments: Arguments) throws -> [Int]? {
        guard let text = arguments.string("sequence-length") else { return nil }
        let lengths = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !lengths.isEmpty, lengths.allSatisfy({ $0.map { (1...1_000_000).contains($0) } ?? false }) else {
            throw UsageError("option '--sequence-length' expects whole numbers from 1 to 1000000, separated by commas, got '\(text)'",
                             command: "unroll bench")
        }
        return lengths.map { $0! }
    }

    /// The mode of `--checkpointing none|auto|N`.
    static func checkpointingMode(_ arguments: Arguments, command: String = "unroll bench") throws -> Checkpointing {
        switch arguments.string("checkpointing") {
        case nil, "none": return .none
        case "auto": return .automatic
        case let text?:
            guard let length = Int(text), length >= 1 else {
                throw UsageError("option '--checkpointing' expects none, auto or a whole number of steps of at least 1, got '\(text)'",
                                 command: command)
            }
            return .every(length)
        }
    }
}

extension String {
    /// The string with spaces added in front up to `width` characters.
    func leftPadded(to width: Int) -> String {
        String(repeating: " ", count: max(0, width - count)) + self
    }
}
