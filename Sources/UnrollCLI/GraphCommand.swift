import Foundation
import Graph
import Layers
import Serialization
import Train

/// Records a few unrolled steps of a cell on a tape and writes the graph in Graphviz DOT.
enum GraphCommand: Subcommand {
    static let name = "graph"
    static let abstract = "Write the unrolled graph of a few steps of a cell as Graphviz DOT."
    static let usage = "[OPTIONS]"
    static let discussion = """
        Runs one batch of random input through the chosen cell for --steps time steps on a tape, with a mean
        squared error loss on the last step's output (so every node the backward pass visits is there), and
        writes tape.dot(): parameters as boxes, data as ellipses, operations grouped by layer and time step.
        Render it with: dot -Tsvg graph.dot -o graph.svg
        With --plan the tape is also compiled as a training step is (record → fuse → plan): it prints every
        kernel of the plan (fused sweeps with the tape nodes they cover and their instructions, matrix
        products with their FLOPs, the row-parallel segment each runs in: runs of kernels split by batch rows
        over both cores), the arena and the bytes kept for backward; the DOT then groups the records of each
        fused forward sweep in one cluster.
        """
    static let options: [OptionSpecification] = [
        ModelOptions.cell(default: "lstm"),
        .option("steps", "N", "Time steps to unroll (default 3)."),
        .option("units", "N", "Hidden size (default 4)."),
        .option("features", "N", "Input features per step (default 1)."),
        .option("batch-size", "N", "Rows in the batch (default 1)."),
        .option("seed", "N", "Seed for the weights and the data (default 1)."),
        .option("checkpointing", "MODE", "none (default), auto or N: record segments of N steps as checkpoint nodes "
                + "(the steps inside are rerun in backward, so they are not on the tape)."),
        .option("out", "FILE", "Write the DOT there and print node counts (default: DOT to standard output)."),
        .flag("plan", "Compile the tape into a plan and print its kernels and memory (DOT clusters are fused kernels)."),
    ]

    /// The recorded tape of `steps` steps of `cell` with an MSE loss on the last output.
    static func record(cell: CellKind, steps: Int, hiddenSize: Int, featureCount: Int, batchSize: Int,
                       seed: UInt64, checkpointing: Checkpointing = .none) throws -> Tape {
        try recordStep(cell: cell, steps: steps, hiddenSize: hiddenSize, featureCount: featureCount, batchSize: batchSize,
                       seed: seed, checkpointing: checkpointing).tape
    }

    /// The recorded step, with its input and target leaves and its loss (what a ``Plan`` compiles).
    static func recordStep(cell: CellKind, steps: Int, hiddenSize: Int, featureCount: Int, batchSize: Int,
                           seed: UInt64, checkpointing: Checkpointing = .none) throws
        -> (tape: Tape, input: Node, target: Node, loss: Node) {
        Initializers.resetSeedSequence(to: seed)
        let layer = cell.layer(hiddenSize: hiddenSize, inputShape: [steps, featureCount], returnSequences: false,
                               isBidirectional: false)
        try layer.build(inputShape: [steps, featureCount])
        (layer as? any CheckpointingLayer)?.checkpointing = checkpointing
        var generator = SeededGenerator(seed: seed)
        let tape = Tape()
        let input = tape.constant(Tensor.randomUniform([batchSize, steps, featureCount], in: -1...1, generator: &generator))
        let target = tape.constant(Tensor.randomUniform([batchSize, hiddenSize], in: -1...1, generator: &generator))
        let loss = Loss.meanSquaredError(layer(input), target)
        tape.backward(from: loss)
        return (tape, input, target, loss)
    }

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let cell = try ModelOptions.cell(from: arguments, default: .lstm)
        let outputURL = arguments.string("out") == nil ? nil : try arguments.outputPath("out", default: "", kind: .file)
        let (tape, input, target, loss) = try recordStep(cell: cell,
                              steps: try arguments.integer("steps", default: 3, in: 1...1_000),
                              hiddenSize: try arguments.integer("units", default: 4, in: 1...4_096),
                              featureCount: try arguments.integer("features", default: 1, in: 1...4_096),
                              batchSize: try arguments.integer("batch-size", default: 1, in: 1...4_096),
                              seed: try arguments.seed("seed", default: 1),
                              checkpointing: try BenchCommand.checkpointingMode(arguments, command: "unroll graph"))
        let plan = arguments.isSet("plan")
            ? Plan(tape: tape, inputs: [input, target], outputs: [loss], differentiating: loss) : nil
        let dot = tape.dot(name: "\(cell.rawValue)_unrolled", plan: plan)
        guard let outputURL else {
            if let plan { print(plan.summary, to: &output) } else { print(dot, terminator: "", to: &output) }
            return
        }
        if let plan { print(plan.summary, to: &output) }
        let path = outputURL.path
        try writeAtomically(Data(dot.utf8), to: outputURL)
        print("Wrote \(path): \(tape.count) nodes, \(tape.savedScalarCount) saved scalars.", to: &output)
        print("Kept for the backward pass: \(4 * tape.savedScalarCount) bytes; peak during it (with the largest "
              + "checkpointed segment rebuilt): \(4 * tape.peakSavedScalarCount) bytes.", to: &output)
        print("Nodes per op:", to: &output)
        let counts = tape.opCounts.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        let width = counts.map(\.key.count).max() ?? 0
        for (op, count) in counts {
            print("  " + op.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(count)", to: &output)
        }
    }
}
