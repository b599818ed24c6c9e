import Foundation
import Graph
import Layers
import Serialization
import Train

/// Draws how large the gradient that reaches each time step is, for SimpleRNN, LSTM and GRU on one task:
/// the vanishing-gradient lesson as a picture.
enum GradientFlowCommand: Subcommand {
    static let name = "gradient-flow"
    static let abstract = "Plot the gradient's size at every time step for SimpleRNN, LSTM and GRU (SVG, log scale)."
    static let usage = "[OPTIONS]"
    static let discussion = """
        The task: remember the first value of a sequence of random inputs in [-1, 1]; the loss is the squared
        error of a Dense(1) readout of the last hidden state against that first value. For layers of each cell
        built from the same seed on the same data (freshly initialised, or after --epochs of Adam on the task) it
        computes ||dloss/dh(t)|| for every step t (RNN.gradientNormsThroughTime) and draws the three curves on a
        logarithmic axis. The further back a curve falls, the less an early step can learn from the loss.
        At initialisation a SimpleRNN's gradient shrinks geometrically towards early steps (tanh' < 1 at every
        step) while an LSTM's, carried by a cell state whose forget gate starts near sigmoid(1) = 0.73, falls
        far less. A fresh GRU falls fastest: with zero biases its update gate starts near 0.5, so the state keeps
        about half of itself per step until training opens the gate. Prints the norms at a few steps and writes
        the SVG.
        """
    static let options: [OptionSpecification] = [
        .option("steps", "N", "Sequence length (default 100)."),
        .option("units", "N", "Hidden size of every cell (default 32)."),
        .option("batch-size", "N", "Sequences in the batch (default 16)."),
        .option("epochs", "N", "Train each cell and its readout on the task first, this many epochs (default 0)."),
        .option("seed", "N", "Seed for the weights and the data (default 1)."),
        .option("out", "FILE", "Where the plot goes (default ./gradient-flow.svg)."),
    ]

    /// `‖∂loss/∂h(t)‖` for every step, for each of SimpleRNN, LSTM and GRU, in that order.
    static func norms(steps: Int, hiddenSize: Int, batchSize: Int, epochs: Int, seed: UInt64) throws -> [(name: String, norms: [Float])] {
        var generator = SeededGenerator(seed: seed)
        let x = Tensor.randomUniform([batchSize, steps, 1], in: -1...1, generator: &generator)
        let target = x.slice(along: 1, 0..<1).reshaped(to: [batchSize, 1])
        func measure<Cell: RecurrentCell>(_ layer: RNN<Cell>) throws -> [Float] {
            let readout = Dense(outputSize: 1, seed: seed &+ 1)
            let model = Sequential([layer, readout])
            try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01))
            if epochs > 0 { try model.fit(x, target, epochs: epochs, batchSize: batchSize, verbose: .silent, seed: seed) }
            defer { model.parameters.forEach { $0.zeroGradient() } }
            return layer.gradientNormsThroughTime(input: x) { h in square(readout(h) - h.onSameTape(target)).mean() }
        }
        return [
            ("SimpleRNN", try measure(SimpleRNN(hiddenSize: hiddenSize, inputShape: [steps, 1], seed: seed))),
            ("LSTM", try measure(LSTM(hiddenSize: hiddenSize, inputShape: [steps, 1], seed: seed))),
            ("GRU", try measure(GRU(hiddenSize: hiddenSize, inputShape: [steps, 1], seed: seed))),
        ]
    }

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let steps = try arguments.integer("steps", default: 100, in: 2...100_000)
        let hiddenSize = try arguments.integer("units", default: 32, in: 1...4096)
        let batchSize = try arguments.integer("batch-size", default: 16, in: 1...100_000)
        let epochs = try arguments.integer("epochs", default: 0, in: 0...100_000)
        let seed = try arguments.seed("seed", default: 1)
        let url = try arguments.outputPath("out", default: "gradient-flow.svg", kind: .file)

        let results = try norms(steps: steps, hiddenSize: hiddenSize, batchSize: batchSize, epochs: epochs, seed: seed)
        let shown = Array(Set([0, steps / 4, steps / 2, 3 * steps / 4, steps - 1])).sorted()
        print("||dloss/dh(t)|| for \(hiddenSize) units, a batch of \(batchSize), loss at the last of \(steps) steps, "
              + (epochs == 0 ? "untrained:" : "after \(epochs) epochs:"), to: &output)
        print("cell".padding(toLength: 11, withPad: " ", startingAt: 0)
              + shown.map { "t=\($0)".leftPadded(to: 12) }.joined() + "first/last".leftPadded(to: 13), to: &output)
        for (name, norms) in results {
            print(name.padding(toLength: 11, withPad: " ", startingAt: 0)
                  + shown.map { String(format: "%.3e", norms[$0]).leftPadded(to: 12) }.joined()
                  + String(format: "%.3e", norms[0] / norms[steps - 1]).leftPadded(to: 13), to: &output)
        }
        let colors = ["SimpleRNN": "#d62728", "LSTM": "#1f77b4", "GRU": "#2ca02c"]
        let plot = SVGPlot(
            title: "Gradient reaching each time step (loss at step \(steps - 1)" + (epochs == 0 ? ", untrained)" : ", \(epochs) epochs)"),
            xLabel: "time step t",
            yLabel: "||dloss/dh(t)|| (log scale)",
            series: results.map { name, norms in
                .init(name: name, color: colors[name]!, points: norms.enumerated().map { (Double($0.offset), Double($0.element)) })
            },
            isLogarithmic: true, formatX: { String(Int($0)) })
        try writeAtomically(Data(plot.render().utf8), to: url)
        print("Wrote \(url.path).", to: &output)
    }
}
