import Graph

/// Supervised examples cut from a time series: each window pairs `pastSteps` consecutive steps of
/// every feature (the input) with the `futureSteps` steps that follow, in the chosen target columns.
///
/// For a series `[N, F]`, window `w` starts at step `s = w * stride`:
/// ```
/// inputs[w]  = series[s ..< s + pastSteps, all columns]                    [pastSteps, F]
/// targets[w] = series[s + pastSteps ..< s + pastSteps + futureSteps, targetColumns]
/// count      = (N - pastSteps - futureSteps) / stride + 1
/// ```
/// This is what `keras.utils.timeseries_dataset_from_array` builds when given the series as data and the
/// shifted series as targets, with the horizon kept as an axis of its own.
public struct Windows: Sendable {
    /// The input windows, `[count, pastSteps, features]`.
    public let inputs: Tensor
    /// The target windows, `[count, futureSteps, targetColumns.count]`.
    public let targets: Tensor
    /// The series columns that `targets` holds, in order.
    public let targetColumns: [Int]
    /// The series step at which each window's input begins.
    public let startSteps: [Int]

    /// The number of windows.
    public var count: Int { inputs.shape[0] }
    /// The number of input steps per window.
    public var pastSteps: Int { inputs.shape[1] }
    /// The number of target steps per window (the forecast horizon).
    public var futureSteps: Int { targets.shape[1] }
    /// The number of features in each input step.
    public var featureCount: Int { inputs.shape[2] }

    /// The targets with the horizon and target axes merged, `[count, futureSteps * targetColumns.count]`:
    /// the shape a `Dense` output layer predicts. Shares storage with ``targets``.
    public var flattenedTargets: Tensor {
        targets.reshaped(to: [count, futureSteps * targetColumns.count])
    }

    /// Creates the windows of a series `[steps, features]`.
    ///
    /// - Parameters:
    ///   - series: The series, one row per time step, one column per feature.
    ///   - pastSteps: The number of steps each input window holds (at least 1).
    ///   - futureSteps: The number of steps to predict after each input window (at least 1).
    ///   - targetColumns: The columns to predict, in the order the targets hold them; `nil` means all.
    ///   - stride: The number of steps between the starts of consecutive windows (at least 1).
    /// - Throws: ``DataError`` when a size is below 1, the series is not a matrix, is too short for one
    ///   window or holds NaN or infinity, or a target column is out of range.
    public init(series: Tensor, pastSteps: Int, futureSteps: Int, targetColumns: [Int]? = nil,
                stride: Int = 1) throws {
        guard pastSteps >= 1 else { throw DataError.invalidPastSteps(pastSteps) }
        guard futureSteps >= 1 else { throw DataError.invalidFutureSteps(futureSteps) }
        guard stride >= 1 else { throw DataError.invalidStride(stride) }
        guard series.rank == 2 else { throw DataError.invalidSeriesShape(series.shape) }
        let length = series.shape[0], features = series.shape[1]
        guard length >= pastSteps + futureSteps else {
            throw DataError.seriesTooShort(length: length, pastSteps: pastSteps, futureSteps: futureSteps)
        }
        let columns = targetColumns ?? Array(0..<features)
        guard !columns.isEmpty else { throw DataError.noTargetColumns }
        if let bad = columns.first(where: { $0 < 0 || $0 >= features }) {
            throw DataError.columnOutOfRange(column: bad, featureCount: features)
        }
        // Checked once here so a NaN is reported at its source rather than as a NaN loss many epochs later.
        if let index = series.firstNonFiniteIndex {
            throw DataError.nonFinite(row: index / features, column: index % features)
        }
        let inputs = series.slice(along: 0, 0..<(length - futureSteps)).windows(length: pastSteps, stride: stride)
        let futures = series.slice(along: 0, pastSteps..<length).windows(length: futureSteps, stride: stride)
        let targets = columns == Array(0..<features) ? futures : futures.gathering(columns, along: 2)
        let count = inputs.shape[0]
        self.init(inputs: inputs, targets: targets, targetColumns: columns,
                  startSteps: (0..<count).map { $0 * stride })
    }

    /// Creates the windows of a single-feature series; the inputs have 1 feature and the targets 1 column.
    ///
    /// - Throws: ``DataError`` as ``init(series:pastSteps:futureSteps:targetColumns:stride:)`` does.
    public init(series: [Float], pastSteps: Int, futureSteps: Int, stride: Int = 1) throws {
        try self.init(series: Tensor(shape: [series.count, 1], scalars: series),
                      pastSteps: pastSteps, futureSteps: futureSteps, stride: stride)
    }

    private init(inputs: Tensor, targets: Tensor, targetColumns: [Int], startSteps: [Int]) {
        self.inputs = inputs
        self.targets = targets
        self.targetColumns = targetColumns
        self.startSteps = startSteps
    }

    /// Returns the windows at positions `range`, sharing storage with these (no copy).
    ///
    /// - Throws: ``DataError/windowRangeOutOfBounds(lowerBound:upperBound:count:)`` when `range` reaches
    ///   outside `0..<count`.
    public func slice(_ range: Range<Int>) throws -> Windows {
        guard range.lowerBound >= 0 && range.upperBound <= count else {
            throw DataError.windowRangeOutOfBounds(lowerBound: range.lowerBound, upperBound: range.upperBound,
                                                   count: count)
        }
        return Windows(inputs: inputs.slice(along: 0, range), targets: targets.slice(along: 0, range),
                       targetColumns: targetColumns, startSteps: Array(startSteps[range]))
    }

    /// Splits the windows in time order: the first `floor(count * trainFraction)` for training, the rest
    /// for testing. Neither side is shuffled.
    ///
    /// With `futureSteps > 1` the targets of the last training windows cover steps that the first test
    /// windows also predict; to keep the test period entirely unseen, split the series before windowing.
    ///
    /// - Throws: ``DataError/invalidTrainFraction(_:)`` unless `0 < trainFraction < 1`, and
    ///   ``DataError/emptySplit(windowCount:trainFraction:)`` when either side would hold no windows.
    public func split(trainFraction: Double) throws -> (train: Windows, test: Windows) {
        guard trainFraction > 0 && trainFraction < 1 else { throw DataError.invalidTrainFraction(trainFraction) }
        let trainCount = Int((Double(count) * trainFraction).rounded(.down))
        guard trainCount > 0 && trainCount < count else {
            throw DataError.emptySplit(windowCount: count, trainFraction: trainFraction)
        }
        return (try slice(0..<trainCount), try slice(trainCount..<count))
    }
}
