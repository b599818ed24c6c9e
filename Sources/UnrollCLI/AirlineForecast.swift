import Datasets
import Foundation
import Graph
import Layers
import Train

/// The default job's forecaster: an LSTM that predicts next month's airline passengers one step ahead.
///
/// The series has a strong trend, so a network fed scaled *levels* never sees test-period values during
/// training and cannot extrapolate to them. This one works on growth instead:
/// ```
/// r_t  = log(y_t / y_{t-1})                           month-on-month log-ratio
/// x    = standardize(r_{t-12} ... r_{t-1})            12 past ratios, statistics from the training part
/// r̂_t  = unstandardize(Dense(LSTM(x)))                the next ratio
/// ŷ_t  = y_{t-1} · exp(r̂_t)                           the forecast level
/// ```
/// Windows are split in time order: the first two thirds train, the rest test. The baselines are the
/// naive forecast `ŷ_t = y_{t-1}` and the seasonal naive forecast `ŷ_t = y_{t-12}`.
public final class AirlineForecast {
    /// The knobs of a run.
    public struct Settings: Sendable, Equatable {
        /// Passes over the training windows.
        public var epochs: Int
        /// The LSTM's hidden size (Keras' units).
        public var hiddenSize: Int
        /// Adam's learning rate at the start.
        public var learningRate: Float
        /// The factor the learning rate falls by, exponentially, over the whole run (1 keeps it constant).
        public var learningRateDecay: Float
        /// Windows per training step.
        public var batchSize: Int
        /// Fixes the initial weights and the shuffling.
        public var seed: UInt64
        /// Past log-ratios per input window.
        public var pastSteps: Int

        /// Creates settings; the defaults are the default job's.
        public init(epochs: Int = 300, hiddenSize: Int = 32, learningRate: Float = 0.02,
                    learningRateDecay: Float = 0.005, batchSize: Int = 16, seed: UInt64 = 1, pastSteps: Int = 12) {
            self.epochs = epochs
            self.hiddenSize = hiddenSize
            self.learningRate = learningRate
            self.learningRateDecay = learningRateDecay
            self.batchSize = batchSize
            self.seed = seed
            self.pastSteps = pastSteps
        }
    }

    /// The fraction of windows, taken from the start, that train the model.
    public static let trainFraction = 2.0 / 3.0

    /// The settings of this run.
    public let settings: Settings
    /// The network: LSTM then a one-output Dense layer.
    public let model: Sequential
    /// The series in its own units.
    public let series: [Float]
    /// The windows of standardized log-ratios used for training.
    public let trainingWindows: Windows
    /// The windows of standardized log-ratios whose targets are the test months.
    public let testWindows: Windows
    /// The scaler fitted on the log-ratios the training windows cover.
    public let scaler: StandardScaler
    /// The mean training loss of each epoch run so far (mean squared error on standardized ratios).
    public private(set) var losses: [Float] = []

    /// Prepares the data and builds the model (without training it).
    ///
    /// - Throws: ``TrainingError/invalidArgument(name:value:reason:)`` when a value is not positive and
    ///   finite (a log-ratio needs that), and ``DataError`` when the series is too short for the windows.
    public init(series: [Float] = EmbeddedData.airlinePassengers, settings: Settings = Settings()) throws {
        if let index = series.firstIndex(where: { !($0 > 0) || !$0.isFinite }) {
            throw TrainingError.invalidArgument(name: "series[\(index)]", value: "\(series[index])",
                                                reason: "log-ratios need positive, finite values")
        }
        self.series = series
        self.settings = settings
        let ratios = zip(series.dropFirst(), series).map { Foundation.log($0 / $1) }
        // Windows of the raw ratios fix the split; the scaler then sees only what training covers.
        let raw = try Windows(series: ratios, pastSteps: settings.pastSteps, futureSteps: 1)
        let trainingCount = try raw.split(trainFraction: AirlineForecast.trainFraction).train.count
        var scaler = StandardScaler()
        try scaler.fit(Tensor(shape: [trainingCount + settings.pastSteps, 1],
                              scalars: Array(ratios[0..<(trainingCount + settings.pastSteps)])))
        self.scaler = scaler
        let scaled = try scaler.transform(Tensor(shape: [ratios.count, 1], scalars: ratios))
        let windows = try Windows(series: scaled, pastSteps: settings.pastSteps, futureSteps: 1)
        (trainingWindows, testWindows) = try windows.split(trainFraction: AirlineForecast.trainFraction)

        Initializers.resetSeedSequence(to: settings.seed)
        model = Sequential(name: "airline_forecaster")
        model.add(LSTM(hiddenSize: settings.hiddenSize, inputShape: [settings.pastSteps, 1]))
        model.add(Dense(outputSize: 1))
        let steps = settings.epochs * ((trainingWindows.count + settings.batchSize - 1) / settings.batchSize)
        let schedule = ExponentialDecay(initialLearningRate: settings.learningRate, decaySteps: max(steps, 1),
                                        decayRate: settings.learningRateDecay)
        try model.compile(loss: .meanSquaredError,
                          optimizer: Adam(learningRate: settings.learningRate, schedule: schedule))
    }

    /// The series index of the month a window's target is: window `w` ends on ratio `w + pastSteps`,
    /// which is the change into month `w + pastSteps + 1`.
    func targetMonth(ofWindowStartingAt start: Int) -> Int { start + settings.pastSteps + 1 }

    /// Trains for ``Settings/epochs`` epochs, calling `progress(epoch, loss)` after each (epochs from 1).
    ///
    /// - Throws: ``TrainingError`` from the model.
    @discardableResult
    public func train(progress: (Int, Float) -> Void = { _, _ in }) throws -> [Float] {
        let x = trainingWindows.inputs, y = trainingWindows.flattenedTargets
        for epoch in 1...settings.epochs {
            let history = try model.fit(x, y, epochs: 1, batchSize: settings.batchSize, verbose: .silent,
                                        seed: settings.seed &+ UInt64(losses.count))
            guard let loss = history["loss"].first else {
                throw TrainingError.unsupported(history.stopReason ?? "training stopped at epoch \(epoch)")
            }
            losses.append(loss)
            progress(epoch, loss)
        }
        return losses
    }

    /// Returns the one-step forecasts of the test months with the baselines' and their errors.
    ///
    /// - Throws: ``TrainingError`` or ``DataError`` from prediction and scaling.
    public func evaluate() throws -> ForecastResult {
        let predicted = try scaler.inverseTransform(try model.predict(testWindows.inputs), column: 0).scalars
        let months = testWindows.startSteps.map(targetMonth(ofWindowStartingAt:))
        return ForecastResult(
            months: months,
            actual: months.map { series[$0] },
            forecast: zip(months, predicted).map { month, ratio in series[month - 1] * Foundation.exp(ratio) },
            naiveForecast: months.map { series[$0 - 1] },
            seasonalNaiveForecast: months.map { series[$0 - 12] },
            losses: losses,
            trainingWindowCount: trainingWindows.count)
    }

    /// Builds, trains and evaluates a forecaster on the embedded series.
    ///
    /// - Throws: the errors of ``init(series:settings:)``, ``train(progress:)`` and ``evaluate()``.
    public static func run(epochs: Int, seed: UInt64) throws -> ForecastResult {
        var settings = Settings()
        settings.epochs = epochs
        settings.seed = seed
        let forecaster = try AirlineForecast(settings: settings)
        try forecaster.train()
        return try forecaster.evaluate()
    }
}

/// One-step forecasts of a test period, the baselines' forecasts, and how training went.
public struct ForecastResult: Sendable {
    /// The series index of each forecast month.
    public let months: [Int]
    /// The observed values of those months.
    public let actual: [Float]
    /// The model's forecasts.
    public let forecast: [Float]
    /// The naive forecasts: the month before.
    public let naiveForecast: [Float]
    /// The seasonal naive forecasts: the same month a year before.
    public let seasonalNaiveForecast: [Float]
    /// The training loss of each epoch.
    public let losses: [Float]
    /// The number of windows the model trained on.
    public let trainingWindowCount: Int

    /// The model's root mean squared error over the test months.
    public var rootMeanSquaredError: Float { Self.rootMeanSquaredError(forecast, actual) }
    /// The naive forecast's root mean squared error.
    public var naiveRootMeanSquaredError: Float { Self.rootMeanSquaredError(naiveForecast, actual) }
    /// The seasonal naive forecast's root mean squared error.
    public var seasonalNaiveRootMeanSquaredError: Float { Self.rootMeanSquaredError(seasonalNaiveForecast, actual) }

    /// Returns `sqrt(mean((forecast - actual)²))`, accumulated in double precision.
    public static func rootMeanSquaredError(_ forecast: [Float], _ actual: [Float]) -> Float {
        check(forecast.count == actual.count && !actual.isEmpty, "rootMeanSquaredError: counts differ or are 0")
        let sum = zip(forecast, actual).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }
        return Float((sum / Double(actual.count)).squareRoot())
    }
}
