import Datasets
import Foundation
import Graph
import Train

/// Loads a model saved by `train` and forecasts the steps that follow a CSV file's last rows.
enum PredictCommand: Subcommand {
    static let name = "predict"
    static let abstract = "Forecast with a model saved by 'train'."
    static let usage = "FILE.csv --model DIR [OPTIONS]"
    static let discussion = """
        Reads the model and preprocessing.json from --model, takes the feature columns of the CSV file, scales
        them as in training (windowing and scaler), and prints the forecast of the target for the steps after the last --past rows.
        With --windows N, also forecasts from each of the N windows ending before that, oldest first.
        """
    static let options: [OptionSpecification] = [
        .option("model", "DIR", "The directory 'train' saved to (required)."),
        .option("windows", "N", "Forecast from the last N windows instead of only the last (default 1)."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(1...1, describing: "one CSV file")
        let directory = URL(fileURLWithPath: try arguments.requiredString("model", "DIR"), isDirectory: true)
        let windowCount = try arguments.integer("windows", default: 1, in: 1...1_000_000)
        let preprocessing = try Preprocessing.load(from: directory)
        let model = try Sequential.load(from: directory)
        let past = preprocessing.pastSteps, featureCount = preprocessing.features.count
        guard model.inputShape == [past, featureCount] else {
            throw TrainingError.shapeMismatch(name: "the saved model's input", expected: [past, featureCount],
                                              actual: model.inputShape ?? [])
        }
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
}
