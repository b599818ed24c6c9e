import Datasets
import Foundation
import Graph
import Layers
import Train

/// A two-input forecaster: a window of a quarterly series plus the quarter it predicts, against the same model
/// without the quarter and the naive forecast.
enum QuarterlyCommand: Subcommand {
    static let name = "quarterly"
    static let abstract = "Forecast a quarterly series' growth with and without the quarter as a second input."
    static let usage = "FILE.csv [OPTIONS]"
    static let discussion = """
        The file needs a 'quarter' column (1-4) and the series column. The target is the next quarter's growth,
        100·log(x[t+1]/x[t]); the inputs are the last --past growths (standardized with the training part's mean
        and deviation) and, for the two-input model, the target quarter one-hot. The first 80% of the windows
        train, the last 20% test. Models: LSTM(units) -> Dense(1), and Concatenate(LSTM(units), quarter) ->
        Dense(1), both a functional Model, seeded alike. The naive forecast repeats the last growth. RMSE on the
        test windows, in growth points.
        """
    static let options: [OptionSpecification] = [
        .option("column", "NAME", "The series (default realgdp)."),
        .option("past", "N", "Quarters of growth in each window (default 8)."),
        .option("epochs", "N", "Training epochs (default 50)."),
        .option("units", "N", "LSTM hidden size (default 8)."),
        .option("seed", "N", "Seed for weights and shuffling (default 1)."),
        .flag("eager", "Run every step eagerly (compile(jitCompile: false)); by default both models replay compiled plans."),
    ]

    /// The test RMSE of each forecaster.
    struct Result {
        let naive: Float
        let singleInput: Float
        let twoInput: Float
        let trainCount: Int
        let testCount: Int
    }

    static func run(_ arguments: Arguments, output: inout some TextOutputStream) throws {
        try arguments.expectPositionals(1...1, describing: "one CSV file")
        let table = try CSVTable(contentsOf: URL(fileURLWithPath: arguments.positionals[0]))
        let column = arguments.string("column") ?? "realgdp"
        let result = try evaluate(table, column: column, past: try arguments.integer("past", default: 8, in: 1...100),
                                  epochs: try arguments.integer("epochs", default: 50, in: 1...100_000),
                                  units: try arguments.integer("units", default: 8, in: 1...1_024),
                                  seed: try arguments.seed("seed", default: 1), jitCompile: !arguments.isSet("eager"))
        print("\(column) growth: \(result.trainCount) training and \(result.testCount) test windows.", to: &output)
        print("Test RMSE (growth points): naive " + String(format: "%.4f", result.naive)
              + ", single-input " + String(format: "%.4f", result.singleInput)
              + ", two-input (with quarter) " + String(format: "%.4f", result.twoInput), to: &output)
    }

    /// Trains both models on the file's series and returns the test RMSEs.
    static func evaluate(_ table: CSVTable, column: String, past: Int, epochs: Int, units: Int, seed: UInt64,
                         jitCompile: Bool = true) throws -> Result {
        let values = try table.numericColumns(["quarter", column]).scalars
        let quarters = stride(from: 0, to: values.count, by: 2).map { Int(values[$0]) }
        let levels = stride(from: 1, to: values.count, by: 2).map { values[$0] }
        guard levels.allSatisfy({ $0 > 0 }), quarters.allSatisfy({ (1...4).contains($0) }) else {
            throw UsageError("'\(column)' must be positive and 'quarter' in 1...4 in \(table.source)", command: "unroll quarterly")
        }
        let growth = (1..<levels.count).map { 100 * Foundation.log(levels[$0] / levels[$0 - 1]) }
        let count = growth.count - past
        guard count >= 10 else {
            throw UsageError("\(table.source) has \(levels.count) rows: too few for windows of \(past)", command: "unroll quarterly")
        }
        let trainCount = count * 4 / 5
        let trainValues = growth[0..<(trainCount + past)]
        let mean = trainValues.reduce(0, +) / Float(trainValues.count)
        let deviation = (trainValues.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(trainValues.count)).squareRoot()
        let normalized = growth.map { ($0 - mean) / deviation }
        let windows = Tensor(shape: [growth.count, 1], scalars: normalized).windows(length: past, stride: 1)
            .slice(along: 0, 0..<count)
        // growth[i] is the change into row i + 1 of the file.
        let quarter = Tensor(shape: [count], scalars: (0..<count).map { Float(quarters[$0 + past + 1] - 1) }).oneHot(classes: 4)
        let target = Tensor(shape: [count, 1], scalars: Array(normalized[past..<(past + count)]))
        let split = { (tensor: Tensor) in (tensor.slice(along: 0, 0..<trainCount), tensor.slice(along: 0, trainCount..<count)) }
        let (trainX, testX) = split(windows), (trainQ, testQ) = split(quarter), (trainY, testY) = split(target)
        func rmse(_ prediction: Tensor) -> Float {
            let squared = zip(prediction.scalars, testY.scalars).map { ($0 - $1) * ($0 - $1) }
            return (squared.reduce(0, +) / Float(squared.count)).squareRoot() * deviation
        }
        let naive = rmse(Tensor(shape: [count - trainCount, 1], scalars: (trainCount..<count).map { windows.scalars[$0 * past + past - 1] }))

        func train(withQuarter: Bool) throws -> Float {
            Initializers.resetSeedSequence(to: seed)
            let series = Input(shape: [past, 1]), season = Input(shape: [4])
            let memory = LSTM(hiddenSize: units)(series)
            let features = withQuarter ? Concatenate()([memory, season]) : memory
            let model = try Model(inputs: withQuarter ? [series, season] : [series], outputs: [Dense(outputSize: 1)(features)])
            try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.005), jitCompile: jitCompile)
            let x = withQuarter ? [trainX, trainQ] : [trainX]
            try model.fit(x, [trainY], epochs: epochs, batchSize: 32, verbose: .silent, seed: seed)
            return rmse(try model.predict(withQuarter ? [testX, testQ] : [testX])[0])
        }
        return Result(naive: naive, singleInput: try train(withQuarter: false), twoInput: try train(withQuarter: true),
                      trainCount: trainCount, testCount: count - trainCount)
    }
}
