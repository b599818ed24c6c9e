import Foundation
import Layers
import Train

/// Prints a model's Keras-style summary; by default the course's model, `LSTM(400)` on `[32, 1]` → `Dense(8)`.
enum SummaryCommand: Subcommand {
    static let name = "summary"
    static let abstract = "Print a model's summary (default: LSTM(400) on [32, 1] -> Dense(8))."
    static let usage = "[OPTIONS]"
    static let discussion = """
        Builds a many-to-one forecaster - recurrent layers on [past, features], then Dense(future) - and prints
        its layers, output shapes and parameter counts as Keras does. With no options it is the course's
        model: 32 past steps of one feature, LSTM(400), 8 future steps (646,408 parameters).
        With --model PATH, prints the summary of a saved model instead: a model directory (Sequential or functional)
        or a Keras .keras file.
        """
    static let options: [OptionSpecification] = [
        .option("model", "PATH", "Summarize a saved model (a model directory or a .keras file) instead."),
        ModelOptions.cell(default: "lstm"),
        .option("units", "N", "Hidden size of each recurrent layer (default 400)."),
        .option("layers", "N", "Stacked recurrent layers (default 1)."),
        .flag("bidirectional", "Wrap each recurrent layer in Bidirectional."),
        .option("past", "N", "Input steps (default 32)."),
        .option("features", "N", "Input features per step (default 1)."),
        .option("future", "N", "Output steps (default 8)."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        if let path = arguments.string("model") {
            print(try SavedModel.load(URL(fileURLWithPath: path)).summary, terminator: "", to: &output)
            return
        }
        let description = RecurrentModelDescription(
            cell: try ModelOptions.cell(from: arguments, default: .lstm),
            hiddenSize: try arguments.integer("units", default: 400, in: 1...100_000),
            layerCount: try arguments.integer("layers", default: 1, in: 1...64),
            isBidirectional: arguments.isSet("bidirectional"),
            pastSteps: try arguments.integer("past", default: 32, in: 1...1_000_000),
            featureCount: try arguments.integer("features", default: 1, in: 1...100_000),
            outputSize: try arguments.integer("future", default: 8, in: 1...100_000))
        try description.checkFits(batchSize: nil)
        let model = description.makeModel()
        // Compiling builds every layer and reports a stack that does not fit as an error.
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        print(model.summary(), terminator: "", to: &output)
    }
}
