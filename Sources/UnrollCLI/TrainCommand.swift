import Datasets
import Foundation
import Graph
import Layers
import Serialization
import Train

/// Trains a recurrent forecaster on columns of a CSV file and saves it with its scaling for `predict`.
enum TrainCommand: Subcommand {
    static let name = "train"
    static let abstract = "Train a recurrent forecaster on a CSV file and save it."
    static let usage = "FILE.csv --target NAME [OPTIONS]"
    static let discussion = """
        Reads the --features columns (default: the target alone; the target is always an input too), cuts the
        rows into windows of --past steps followed by --future steps of the target, and splits them in time
        order: the last --test-fraction of the windows test, the rest train (the last --validation-split of
        those validate during training). With --windowing changes (the default) each window is taken relative
        to its last row, and the model predicts the target's change from its last value: a trending series then
        needs no extrapolation, and a model that learned nothing falls back to the naive forecast. The scaler
        is fitted on the training windows only. The
        model is recurrent layers then Dense(future). Prints the test RMSE next to the naive forecast (the
        last observed target value for every future step), then saves the model, preprocessing.json and the loss
        curve (loss.svg, log scale) to --out.
        """
    static let options: [OptionSpecification] = [
        .option("target", "NAME", "The column to forecast (required)."),
        .option("features", "A,B", "Input columns, comma-separated (default: the target alone)."),
        .option("past", "N", "Input steps per window (default 12)."),
        .option("future", "N", "Steps to forecast (default 1)."),
        ModelOptions.cell(default: "lstm"),
        .option("units", "N", "Hidden size of each recurrent layer (default 32)."),
        .option("layers", "N", "Stacked recurrent layers (default 1)."),
        .flag("bidirectional", "Wrap each recurrent layer in Bidirectional."),
        .option("epochs", "N", "Training epochs (default 50)."),
        .option("batch-size", "N", "Windows per step (default 32)."),
        .option("learning-rate", "RATE", "Adam's learning rate (default 0.001)."),
        .option("validation-split", "F", "Fraction of training windows held out for validation (default 0)."),
        .option("test-fraction", "F", "Fraction of windows, from the end, for the test (default 0.2)."),
        .option("scaler", "KIND", "standard or minmax (default standard)."),
        .option("windowing", "KIND", "changes (default: every window relative to its last row, so trends do not "
                + "need extrapolating; the forecast is the last value plus the predicted change) or levels."),
        .option("seed", "N", "Seed for weights and shuffling (default 1)."),
        .option("out", "DIR", "Where the model is saved (default ./unroll-model)."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(1...1, describing: "one CSV file")
        let target = try arguments.requiredString("target", "NAME")
        var features = try arguments.list("features") ?? [target]
        if !features.contains(target) { features.append(target) }
        let pastSteps = try arguments.integer("past", default: 12, in: 1...1_000_000)
        let futureSteps = try arguments.integer("future", default: 1, in: 1...1_000_000)
        let epochs = try arguments.integer("epochs", default: 50, in: 1...1_000_000)
        let batchSize = try arguments.integer("batch-size", default: 32, in: 1...1_000_000)
        let learningRate: Float = try arguments.number("learning-rate", default: 0.001, in: 0...10, isOpenBelow: true)
        let validationSplit: Float = try arguments.number("validation-split", default: 0, in: 0...0.9)
        let testFraction: Double = try arguments.number("test-fraction", default: 0.2, in: 0...0.9, isOpenBelow: true)
        let scalerKind = try arguments.choice("scaler", from: ["standard", "minmax"], default: "standard")
        let windowing = try arguments.choice("windowing", from: ["changes", "levels"], default: "changes")
        let seed = try arguments.seed("seed", default: 1)
        let description = RecurrentModelDescription(
            cell: try ModelOptions.cell(from: arguments, default: .lstm),
            hiddenSize: try arguments.integer("units", default: 32, in: 1...100_000),
            layerCount: try arguments.integer("layers", default: 1, in: 1...64),
            isBidirectional: arguments.isSet("bidirectional"),
            pastSteps: pastSteps, featureCount: features.count, outputSize: futureSteps)
        let directory = try arguments.outputPath("out", default: "unroll-model", kind: .modelDirectory)
        try description.checkFits(batchSize: batchSize)

        let file = URL(fileURLWithPath: arguments.positionals[0])
        let series = try CSVTable(contentsOf: file).numericColumns(features)
        let targetColumn = features.firstIndex(of: target)!
        for warning in OutlierCheck.warnings(series, columns: features, file: file.path) { print(warning, to: &output) }
        let raw = try Windows(series: series, pastSteps: pastSteps, futureSteps: futureSteps, targetColumns: [targetColumn])
        let (rawTraining, rawTest) = try raw.split(trainFraction: 1 - testFraction)
        var preprocessing = Preprocessing(features: features, target: target, pastSteps: pastSteps,
                                          futureSteps: futureSteps, scaler: scalerKind, windowing: windowing)
        // The scaler learns only from training windows, so the test period stays unseen.
        try preprocessing.fit(windows: rawTraining.inputs)
        let training = (inputs: try preprocessing.modelInputs(rawTraining.inputs),
                        targets: try preprocessing.modelTargets(rawTraining.flattenedTargets, inputs: rawTraining.inputs),
                        count: rawTraining.count)
        let testInputs = try preprocessing.modelInputs(rawTest.inputs)

        Initializers.resetSeedSequence(to: seed)
        let model = description.makeModel(name: "forecaster")
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: learningRate))
        print("\(file.path): \(series.shape[0]) rows; inputs \(features.joined(separator: ", ")); target \(target).",
              to: &output)
        print("\(raw.count) windows of \(pastSteps) -> \(futureSteps) steps: \(training.count) train, \(rawTest.count) test"
              + (validationSplit > 0 ? " (\(Int(Float(training.count) * validationSplit)) of the training ones validate)" : "")
              + ".", to: &output)
        print(model.summary(), to: &output)

        let reportEvery = max(1, epochs / 10)
        let start = Date()
        var losses: [Float] = [], validationLosses: [Float] = []
        for epoch in 1...epochs {
            let history = try model.fit(training.inputs, training.targets, epochs: 1, batchSize: batchSize,
                                        validationSplit: validationSplit, verbose: .silent, seed: seed &+ UInt64(epoch))
            guard let loss = history["loss"].first else {
                throw TrainingError.unsupported(history.stopReason ?? "training stopped at epoch \(epoch)")
            }
            losses.append(loss)
            validationLosses += history["val_loss"]
            if epoch % reportEvery == 0 || epoch == 1 || epoch == epochs {
                let validation = history["val_loss"].first.map { "  val_loss " + String(format: "%.4f", $0) } ?? ""
                print("  epoch \(epoch)/\(epochs)  loss \(String(format: "%.4f", loss))\(validation)  "
                      + String(format: "%.1f s", Date().timeIntervalSince(start)), to: &output)
            }
        }

        let predicted = try preprocessing.forecast(try model.predict(testInputs), inputs: rawTest.inputs).scalars
        let actual = rawTest.flattenedTargets.scalars
        let naive = rawTest.startSteps.flatMap { start in
            Array(repeating: series[start + pastSteps - 1, targetColumn], count: futureSteps)
        }
        let rmse = ForecastResult.rootMeanSquaredError(predicted, actual)
        let naiveRMSE = ForecastResult.rootMeanSquaredError(naive, actual)
        print(String(format: "Test RMSE (%@, %d windows): model %.4g, naive (last value) %.4g.", target, rawTest.count,
                     rmse, naiveRMSE), to: &output)

        // One atomic save: the model, its preprocessing and its loss curve are replaced together.
        try model.save(to: directory, additionalFiles: [
            (Preprocessing.fileName, try preprocessing.encoded()),
            ("loss.svg", lossPlot(losses, validation: validationLosses)),
        ])
        print("Saved the model, \(Preprocessing.fileName) and loss.svg to \(directory.path).", to: &output)
    }

    /// Returns the loss per epoch (and the validation loss, when there is one) as an SVG plot, on a logarithmic axis.
    static func lossPlot(_ losses: [Float], validation: [Float]) -> Data {
        func points(_ values: [Float]) -> [(x: Double, y: Double)] {
            values.enumerated().map { (Double($0.offset + 1), Double($0.element)) }
        }
        var series: [SVGPlot.Series] = [.init(name: "training loss", color: "#1f77b4", points: points(losses))]
        if !validation.isEmpty { series.append(.init(name: "validation loss", color: "#ff7f0e", points: points(validation), isDashed: true)) }
        let plot = SVGPlot(title: "Training loss (MSE on scaled targets)", xLabel: "epoch", yLabel: "loss", series: series,
                           isLogarithmic: true, formatX: { String(Int($0)) })
        return Data(plot.render().utf8)
    }
}

/// What `predict` needs besides the model: the columns, the window sizes and the fitted scaler.
struct Preprocessing: Codable, Equatable {
    /// The file beside the saved model.
    static let fileName = "preprocessing.json"

    var features: [String]
    var target: String
    var pastSteps: Int
    var futureSteps: Int
    /// `"standard"` or `"minmax"`.
    var scaler: String
    var standardScaler: StandardScaler?
    var minMaxScaler: MinMaxScaler?
    /// `"changes"`: windows relative to their last row, targets as changes from the last target value;
    /// `"levels"` (or absent): raw values.
    var windowing: String?

    init(features: [String], target: String, pastSteps: Int, futureSteps: Int, scaler: String, windowing: String) {
        self.features = features
        self.target = target
        self.pastSteps = pastSteps
        self.futureSteps = futureSteps
        self.scaler = scaler
        self.windowing = windowing
    }

    private var usesChanges: Bool { windowing == "changes" }

    /// Each window's last row `[count, 1, features]`.
    private func lastRow(_ windows: Tensor) -> Tensor {
        windows.slice(along: 1, (pastSteps - 1)..<pastSteps)
    }

    /// Each window's last target value, `[count, 1]`.
    private func lastTarget(_ windows: Tensor) -> Tensor {
        lastRow(windows).slice(along: 2, targetColumn..<(targetColumn + 1)).reshaped(to: [windows.shape[0], 1])
    }

    /// Raw windows `[count, past, features]` as the windowing presents them, before scaling.
    private func presented(_ windows: Tensor) -> Tensor {
        usesChanges ? windows - lastRow(windows) : windows
    }

    /// Fits the scaler on raw training windows `[count, past, features]`.
    mutating func fit(windows: Tensor) throws {
        try fit(presented(windows).reshaped(to: [-1, features.count]))
    }

    /// Returns the model's inputs for raw windows.
    func modelInputs(_ windows: Tensor) throws -> Tensor {
        try transform(presented(windows))
    }

    /// Returns the model's targets for raw targets `[count, future]` of the raw windows `inputs`.
    func modelTargets(_ targets: Tensor, inputs windows: Tensor) throws -> Tensor {
        guard let fitted else { throw DataError.notFitted }
        let relative = usesChanges ? targets - lastTarget(windows) : targets
        return try fitted.transform(relative.reshaped(to: [relative.count, 1]), columns: [targetColumn])
            .reshaped(to: relative.shape)
    }

    /// Returns forecasts in the target's units from the model's outputs for the raw windows `inputs`.
    func forecast(_ outputs: Tensor, inputs windows: Tensor) throws -> Tensor {
        let values = try inverseTarget(outputs)
        return usesChanges ? values + lastTarget(windows) : values
    }

    /// The position of the target among the features.
    var targetColumn: Int { features.firstIndex(of: target) ?? 0 }

    private var fitted: (any FeatureScaler)? { scaler == "minmax" ? minMaxScaler : standardScaler }

    /// Fits the chosen scaler on `data` `[rows, features]`.
    mutating func fit(_ data: Tensor) throws {
        if scaler == "minmax" {
            var fresh = MinMaxScaler()
            try fresh.fit(data)
            minMaxScaler = fresh
        } else {
            var fresh = StandardScaler()
            try fresh.fit(data)
            standardScaler = fresh
        }
    }

    /// Returns `data` scaled feature by feature.
    func transform(_ data: Tensor) throws -> Tensor {
        guard let fitted else { throw DataError.notFitted }
        return try fitted.transform(data)
    }

    /// Returns scaled target values (any shape) in the target's units.
    func inverseTarget(_ data: Tensor) throws -> Tensor {
        guard let fitted else { throw DataError.notFitted }
        return try fitted.inverseTransform(data, column: targetColumn)
    }

    /// The text of `preprocessing.json`, saved in the same atomic step as the model.
    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
