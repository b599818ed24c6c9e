import Datasets
import Foundation
import Graph
import Serialization
import Train

/// Loads a saved model (a directory from `train`, any model directory, or a Keras `.keras` file) and prints its
/// predictions: a forecast after a CSV file's last rows, or the outputs for a JSON array of inputs.
enum PredictCommand: Subcommand {
    static let name = "predict"
    static let abstract = "Predict with a saved model: a model directory (Sequential or functional) or a Keras .keras file."
    static let usage = "FILE.csv --model PATH [OPTIONS] | --model PATH --json INPUT.json"
    static let discussion = """
        With a directory 'train' saved to: reads the model and preprocessing.json, takes the feature columns of the
        CSV file, scales them as in training (windowing and scaler), and prints the forecast of the target for the
        steps after the last --past rows.
        With a .keras file: takes the CSV file's columns (--features, default all) as they are, windows of the
        model's input length, and prints the model's outputs.
        With --windows N, also predicts from each of the N windows ending before the last, oldest first.
        With --json INPUT.json (any saved model): reads a nested array [batch, time, features] (integer tokens
        [batch, time] for a model that starts with an Embedding) and prints the predictions as one JSON array;
        a functional model (a .keras file or a model directory; --json only) of several inputs takes an array of
        one such array per input, and one of several outputs prints an array of one array per output.
        """
    static let options: [OptionSpecification] = [
        .option("model", "PATH", "The saved model: a directory ('train', Sequential.save, Model.save) or a .keras file (required)."),
        .option("windows", "N", "Predict from the last N windows instead of only the last (default 1)."),
        .option("features", "A,B", "For a .keras model: the CSV columns to feed, in order (default all)."),
        .option("json", "FILE", "Read the inputs from a JSON array and print the predictions as JSON."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        let path = try arguments.requiredString("model", "PATH")
        if let json = arguments.string("json") {
            try arguments.expectPositionals(0...0, describing: "no CSV file with --json")
            let inputURL = URL(fileURLWithPath: json)
            switch try SavedModel.load(URL(fileURLWithPath: path)) {
            case .functional(let model):
                let inputs = try JSONInput.tensors(contentsOf: inputURL, inputShapes: model.inputShapes)
                let predictions = try model.predict(inputs)
                let json = predictions.count == 1 ? JSONInput.json(predictions[0]) : .array(predictions.map(JSONInput.json))
                print(json.serialized(), to: &output)
            case .sequential(let model):
                let input = try JSONInput.tensor(contentsOf: inputURL, inputShape: model.inputShape ?? [])
                print(JSONInput.json(try model.predict(input)).serialized(), to: &output)
            }
            return
        }
        try arguments.expectPositionals(1...1, describing: "one CSV file")
        if SavedModel.isFunctional(URL(fileURLWithPath: path)) {
            throw UsageError("\(path) holds a functional model: its inputs come from --json INPUT.json, not a CSV file",
                             command: "unroll predict")
        }
        let windowCount = try arguments.integer("windows", default: 1, in: 1...1_000_000)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            let model = try Sequential.load(keras: URL(fileURLWithPath: path), compile: false)
            try predictRaw(model, arguments, windowCount: windowCount, output: &output)
            return
        }
        let saved = try SavedForecaster(directory: URL(fileURLWithPath: path, isDirectory: true))
        let (model, preprocessing) = (saved.model, saved.preprocessing)
        let past = preprocessing.pastSteps, featureCount = preprocessing.features.count
        let file = URL(fileURLWithPath: arguments.positionals[0])
        let table = try CSVTable(contentsOf: file)
        let series = try table.numericColumns(preprocessing.features)
        let rows = series.shape[0]
        guard rows >= past + windowCount - 1 else {
            throw UsageError("\(file.path) has \(rows) rows; \(windowCount) window(s) of \(past) steps need "
                             + "\(past + windowCount - 1)", command: "unroll predict")
        }
        let starts = Array((rows - past - windowCount + 1)...(rows - past))
        let inputs = Tensor.concatenate(starts.map {
            series.slice(along: 0, $0..<($0 + past)).reshaped(to: [1, past, featureCount])
        }, along: 0)
        let forecasts = try preprocessing.forecast(try model.predict(try preprocessing.modelInputs(inputs)), inputs: inputs)
        print("Forecast of \(preprocessing.target), \(preprocessing.futureSteps) step(s) after each window "
              + "(rows counted from 1 after the header):", to: &output)
        for (row, start) in starts.enumerated() {
            let values = (0..<preprocessing.futureSteps).map { String(format: "%.6g", forecasts[row, $0]) }
            print("  after row \(start + past): " + values.joined(separator: ", "), to: &output)
        }
    }

    /// Predicts from the CSV file's columns as they are (a Keras model carries no preprocessing).
    private static func predictRaw(_ model: Sequential, _ arguments: Arguments, windowCount: Int,
                                   output: inout some TextOutputStream) throws {
        let file = URL(fileURLWithPath: arguments.positionals[0])
        let table = try CSVTable(contentsOf: file)
        let features = arguments.string("features").map { $0.split(separator: ",").map(String.init) } ?? table.columnNames
        let inputShape = model.inputShape ?? []
        guard inputShape.count == 2, inputShape[1] == features.count else {
            throw TrainingError.shapeMismatch(name: "the model's input [time, features] for \(features.count) column(s)",
                                              expected: [inputShape.first ?? 0, features.count], actual: inputShape)
        }
        let series = try table.numericColumns(features)
        let past = inputShape[0], rows = series.shape[0]
        guard rows >= past + windowCount - 1 else {
            throw UsageError("\(file.path) has \(rows) rows; \(windowCount) window(s) of \(past) steps need "
                             + "\(past + windowCount - 1)", command: "unroll predict")
        }
        let starts = Array((rows - past - windowCount + 1)...(rows - past))
        let inputs = Tensor.concatenate(starts.map {
            series.slice(along: 0, $0..<($0 + past)).reshaped(to: [1, past, features.count])
        }, along: 0)
        let predictions = try model.predict(inputs)
        let width = predictions.count / starts.count
        let flat = predictions.scalars
        print("Outputs of the model for each window of \(past) rows (rows counted from 1 after the header):", to: &output)
        for (row, start) in starts.enumerated() {
            let values = flat[(row * width)..<((row + 1) * width)].map { String(format: "%.6g", $0) }
            print("  after row \(start + past): " + values.joined(separator: ", "), to: &output)
        }
    }
}
