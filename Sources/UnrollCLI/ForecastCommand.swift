import Datasets
import Foundation
import Serialization
import Train

/// The default job: trains ``AirlineForecast`` on the embedded airline series, prints the model, the
/// training progress and the test error next to the baselines', and writes `loss.svg` and `forecast.svg`.
enum ForecastCommand: Subcommand {
    static let name = "forecast"
    static let abstract = "Forecast monthly airline passengers with an LSTM (the default job)."
    static let usage = "[OPTIONS]"
    static let discussion = """
        Trains LSTM -> Dense(1) on the 144-month airline passengers series (1949-1960, embedded) to predict
        next month's log-ratio log(y_t / y_t-1) from the previous 12, standardized with statistics of the
        training part; the forecast is y_t-1 * exp(predicted ratio). The first 2/3 of the windows train, the
        rest test. Prints the test RMSE beside the naive (last month) and seasonal naive (a year before)
        baselines, and writes loss.svg and forecast.svg.
        """
    static let options: [OptionSpecification] = [
        .option("epochs", "N", "Training epochs (default 300)."),
        .option("units", "N", "LSTM hidden size (default 32)."),
        .option("learning-rate", "RATE", "Adam's initial learning rate (default 0.02)."),
        .option("learning-rate-decay", "F", "Factor the rate falls by over the run (default 0.005; 1 = constant)."),
        .option("batch-size", "N", "Windows per step (default 16)."),
        .option("seed", "N", "Seed for weights and shuffling (default 1)."),
        .option("report-every", "N", "Print the loss every N epochs (default: a tenth of the epochs)."),
        .option("out", "DIR", "Where the plots go (default ./unroll-output)."),
    ]

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(0...0, describing: "no positional arguments")
        let defaults = AirlineForecast.Settings()
        let settings = AirlineForecast.Settings(
            epochs: try arguments.integer("epochs", default: defaults.epochs, in: 1...100_000),
            hiddenSize: try arguments.integer("units", default: defaults.hiddenSize, in: 1...4096),
            learningRate: try arguments.number("learning-rate", default: defaults.learningRate, in: 0...10, isOpenBelow: true),
            learningRateDecay: try arguments.number("learning-rate-decay", default: defaults.learningRateDecay, in: 0...1,
                                                    isOpenBelow: true),
            batchSize: try arguments.integer("batch-size", default: defaults.batchSize, in: 1...100_000),
            seed: try arguments.seed("seed", default: defaults.seed))
        let reportEvery = try arguments.integer("report-every", default: max(1, settings.epochs / 10), in: 1...Int.max)
        let directory = try arguments.outputPath("out", default: "unroll-output", kind: .directory)

        let forecaster = try AirlineForecast(settings: settings)
        let series = forecaster.series
        let firstTest = forecaster.targetMonth(ofWindowStartingAt: forecaster.testWindows.startSteps[0])
        print("Forecasting monthly airline passengers (thousands), \(EmbeddedData.airlineMonth(0)) to "
              + "\(EmbeddedData.airlineMonth(series.count - 1)), one month ahead.", to: &output)
        print("Inputs: the last \(settings.pastSteps) log-ratios log(y_t / y_t-1), standardized on the training part; "
              + "target: the next one; forecast y_t-1 * exp(r).", to: &output)
        print("Split: \(forecaster.trainingWindows.count) training windows, \(forecaster.testWindows.count) test months "
              + "(\(EmbeddedData.airlineMonth(firstTest)) to \(EmbeddedData.airlineMonth(series.count - 1))).", to: &output)
        print("", to: &output)
        print(forecaster.model.summary(), to: &output)
        let finalRate = settings.learningRate * settings.learningRateDecay
        let schedule = settings.learningRateDecay == 1 ? "" : ", decaying exponentially to \(finalRate)"
        print("Training: Adam (learning rate \(settings.learningRate)\(schedule)), mean squared error, batch size "
              + "\(settings.batchSize), \(settings.epochs) epochs, seed \(settings.seed).", to: &output)

        let start = Date()
        try forecaster.train { epoch, loss in
            guard epoch % reportEvery == 0 || epoch == 1 || epoch == settings.epochs else { return }
            let width = String(settings.epochs).count
            let padded = String(repeating: " ", count: width - String(epoch).count) + String(epoch)
            print("  epoch \(padded)/\(settings.epochs)  loss \(String(format: "%.4f", loss))  "
                  + String(format: "%.1f s", Date().timeIntervalSince(start)), to: &output)
        }
        let result = try forecaster.evaluate()
        let rmse = result.rootMeanSquaredError, naive = result.naiveRootMeanSquaredError
        print("", to: &output)
        print("Test RMSE over \(result.months.count) months (thousands of passengers):", to: &output)
        for (label, value) in [("LSTM forecast", rmse), ("naive (last month)", naive),
                               ("seasonal naive (a year before)", result.seasonalNaiveRootMeanSquaredError)] {
            print("  " + label.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%7.2f", value),
                  to: &output)
        }
        print(String(format: "The LSTM's error is %.0f%% of the naive baseline's.", 100 * rmse / naive), to: &output)

        try writePlots(forecaster: forecaster, result: result, to: directory)
        print("Wrote \(directory.appendingPathComponent("loss.svg").path) and "
              + "\(directory.appendingPathComponent("forecast.svg").path).", to: &output)
    }

    /// Writes the loss curve and the forecast against the actual series (atomically).
    static func writePlots(forecaster: AirlineForecast, result: ForecastResult, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let loss = SVGPlot(
            title: "Training loss (MSE on standardized log-ratios)", xLabel: "epoch", yLabel: "loss",
            series: [.init(name: "training loss", color: "#1f77b4",
                           points: result.losses.enumerated().map { (Double($0.offset + 1), Double($0.element)) })],
            isLogarithmic: true)
        try writeAtomically(Data(loss.render().utf8), to: directory.appendingPathComponent("loss.svg"))

        let year = { (month: Int) in Double(EmbeddedData.airlineFirstYear) + Double(month) / 12 }
        let firstTest = Double(result.months.first ?? 0)
        let forecast = SVGPlot(
            title: "Airline passengers: one-month-ahead forecast on the test months", xLabel: "year",
            yLabel: "passengers (thousands)",
            series: [
                .init(name: "actual", color: "#333333",
                      points: forecaster.series.enumerated().map { (year($0.offset), Double($0.element)) }),
                .init(name: String(format: "LSTM (RMSE %.1f)", result.rootMeanSquaredError), color: "#d62728",
                      points: zip(result.months, result.forecast).map { (year($0), Double($1)) }),
                .init(name: String(format: "naive (RMSE %.1f)", result.naiveRootMeanSquaredError), color: "#7f7f7f",
                      points: zip(result.months, result.naiveForecast).map { (year($0), Double($1)) }, isDashed: true),
            ],
            shadedRegion: (year(0)...(year(Int(firstTest)) - 1.0 / 24), "training"),
            formatX: { String(Int($0)) })
        try writeAtomically(Data(forecast.render().utf8), to: directory.appendingPathComponent("forecast.svg"))
    }
}
