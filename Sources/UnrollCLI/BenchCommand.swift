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

        Memory: "kept" is what the training tape holds for the backward pass (per time step), "peak" adds the
        largest segment a checkpointing layer rebuilds during backward, and "max RSS" is the process' peak
        resident memory so far (getrusage), which never decreases: in a sweep, list the lengths in rising order.
        Without checkpointing, gru-long keeps about 0.26 MB per time step (T = 100000 would need ~26 GB).

        Workloads ([batch, time, features]):
        """ + "\n" + Workload.all.map { "  " + $0.name.padding(toLength: 11, withPad: " ", startingAt: 0) + $0.text }
        .joined(separator: "\n")
    static let options: [OptionSpecification] = [
        .option("workload", "NAME", "Run only this workload: \(Workload.all.map(\.name).joined(separator: ", "))."),
        .option("steps", "N", "Timed steps per workload (default 10)."),
        .option("warmup", "N", "Untimed steps first (default 2)."),
        .option("stat", "KIND", "median (default) or min: the statistic --json reports as msPerStep."),
        .option("sequence-length", "N[,N...]", "Override gru-long's 1000 time steps; a list runs it once per length "
                + "(a sweep such as 1000,10000,100000)."),
        .option("checkpointing", "MODE", "Recurrent layers keep every step (none, the default), every ~√T-th state "
                + "(auto) or every N-th, and recompute the rest in backward."),
        .flag("json", "Print one JSON object per line: {\"workload\": NAME, \"msPerStep\": X}."),
        .flag("node-overhead", "Also time the tape's bookkeeping: µs per recorded node on tiny tensors."),
    ]

    /// One benchmark: a recurrent layer on `[batch, time, features]`, then `Dense(outputSize)`.
    struct Workload {
        let name: String
        let cell: CellKind
        let hiddenSize: Int
        var batchSize: Int
        var timeSteps: Int
        let featureCount: Int
        let outputSize: Int

        static let all = [
            Workload(name: "seed-lstm", cell: .lstm, hiddenSize: 400, batchSize: 128, timeSteps: 32, featureCount: 1, outputSize: 8),
            Workload(name: "small-rnn", cell: .rnn, hiddenSize: 16, batchSize: 13, timeSteps: 3, featureCount: 1, outputSize: 1),
            Workload(name: "gru-long", cell: .gru, hiddenSize: 128, batchSize: 16, timeSteps: 1000, featureCount: 8, outputSize: 1),
            Workload(name: "char-lstm", cell: .lstm, hiddenSize: 256, batchSize: 32, timeSteps: 64, featureCount: 64, outputSize: 64),
        ]

        /// `LSTM(400) on [128, 32, 1] -> Dense(8)`.
        var text: String {
            let layer = ["lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "peephole": "PeepholeLSTM", "indrnn": "IndRNN"][cell.rawValue]!
            return "\(layer)(\(hiddenSize)) on [\(batchSize), \(timeSteps), \(featureCount)] -> Dense(\(outputSize))"
        }
    }

    /// The timings of one workload, in milliseconds per step.
    struct Measurement {
        let workload: Workload
        let milliseconds: [Double]
        let parameterCount: Int
        /// Scalars the training tape kept for the backward pass (graph inspection).
        let tapeScalarCount: Int
        /// The most scalars held for the backward pass at once, with a checkpointed segment being rebuilt.
        let peakTapeScalarCount: Int
        /// The process' peak resident memory after the run, in bytes.
        let peakResidentBytes: Int

        /// Scalars kept per time step.
        var tapeScalarsPerTimeStep: Int { tapeScalarCount / workload.timeSteps }

        var median: Double {
            let sorted = milliseconds.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
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
    static func measure(_ workload: Workload, steps: Int, warmup: Int, checkpointing: Checkpointing = .none) throws -> Measurement {
        Initializers.resetSeedSequence(to: 0xBE7C)
        let model = RecurrentModelDescription(cell: workload.cell, hiddenSize: workload.hiddenSize,
                                              pastSteps: workload.timeSteps, featureCount: workload.featureCount,
                                              outputSize: workload.outputSize).makeModel(name: workload.name)
        for case let layer as any CheckpointingLayer in model.layers { layer.checkpointing = checkpointing }
        try model.compile(loss: .meanSquaredError, optimizer: Adam())
        var generator = SeededGenerator(seed: 42)
        let x = Tensor.randomUniform([workload.batchSize, workload.timeSteps, workload.featureCount], in: -1...1,
                                     generator: &generator)
        let y = Tensor.randomUniform([workload.batchSize, workload.outputSize], in: -1...1, generator: &generator)
        for _ in 0..<warmup { try model.trainOnBatch(x, y) }
        let clock = ContinuousClock()
        var timings: [Double] = []
        for _ in 0..<steps {
            let elapsed = try clock.measure { try model.trainOnBatch(x, y) }
            timings.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) * 1e-15)
        }
        return Measurement(workload: workload, milliseconds: timings, parameterCount: model.parameterCount,
                           tapeScalarCount: model.lastTapeScalarCount, peakTapeScalarCount: model.lastTapePeakScalarCount,
                           peakResidentBytes: ProcessMemory.peakResidentBytes)
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
                guard workload.name == "gru-long" else { return [workload] }
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
        if !isJSON {
            print("ms per training step (forward + backward through time + Adam), median of \(steps) after "
                  + "\(warmup) warm-up", to: &output)
            print("workload".padding(toLength: 11, withPad: " ", startingAt: 0)
                  + "model".padding(toLength: 45, withPad: " ", startingAt: 0)
                  + "params".leftPadded(to: 10) + "ms/step".leftPadded(to: 11) + "min".leftPadded(to: 10)
                  + "kept KB/step".leftPadded(to: 14) + "kept MB".leftPadded(to: 10) + "peak MB".leftPadded(to: 10)
                  + "max RSS MB".leftPadded(to: 12), to: &output)
        }
        for workload in workloads {
            let measurement = try measure(workload, steps: steps, warmup: warmup, checkpointing: checkpointing)
            if isJSON {
                print("{\"workload\": \"\(workload.name)\", \"msPerStep\": \(String(format: "%.4f", statistic == "min" ? (measurement.milliseconds.min() ?? 0) : measurement.median)), "
                      + "\"timeSteps\": \(workload.timeSteps), "
                      + "\"tapeBytesPerTimeStep\": \(4 * measurement.tapeScalarsPerTimeStep), "
                      + "\"tapeBytesKept\": \(4 * measurement.tapeScalarCount), \"tapeBytesPeak\": \(4 * measurement.peakTapeScalarCount), "
                      + "\"peakResidentBytes\": \(measurement.peakResidentBytes)}", to: &output)
            } else {
                print(workload.name.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + workload.text.padding(toLength: 45, withPad: " ", startingAt: 0)
                      + String(measurement.parameterCount).leftPadded(to: 10)
                      + String(format: "%.3f", measurement.median).leftPadded(to: 11)
                      + String(format: "%.3f", measurement.milliseconds.min() ?? 0).leftPadded(to: 10)
                      + String(format: "%.1f", Double(4 * measurement.tapeScalarsPerTimeStep) / 1024).leftPadded(to: 14)
                      + String(format: "%.1f", Double(4 * measurement.tapeScalarCount) / 1_048_576).leftPadded(to: 10)
                      + String(format: "%.1f", Double(4 * measurement.peakTapeScalarCount) / 1_048_576).leftPadded(to: 10)
                      + String(format: "%.0f", Double(measurement.peakResidentBytes) / 1_048_576).leftPadded(to: 12),
                      to: &output)
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
    static func checkpointingMode(_ arguments: Arguments) throws -> Checkpointing {
        switch arguments.string("checkpointing") {
        case nil, "none": return .none
        case "auto": return .automatic
        case let text?:
            guard let length = Int(text), length >= 1 else {
                throw UsageError("option '--checkpointing' expects none, auto or a whole number of steps of at least 1, got '\(text)'",
                                 command: "unroll bench")
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
