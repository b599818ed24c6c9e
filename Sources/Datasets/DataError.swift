/// A problem with outside data: a series that cannot be windowed, a scaler used wrongly, or a CSV file
/// that cannot be read as a table of numbers.
///
/// Each case carries what is needed to find the problem: sizes expected and found, or the file, its
/// 1-based line number and the column name. ``description`` reads as a sentence.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    // MARK: Windowing

    /// The number of input steps per window was below 1.
    case invalidPastSteps(Int)
    /// The number of target steps per window was below 1.
    case invalidFutureSteps(Int)
    /// The step between window starts was below 1.
    case invalidStride(Int)
    /// The series was not a matrix `[steps, features]`.
    case invalidSeriesShape([Int])
    /// The series has fewer steps than one window needs (`pastSteps + futureSteps`).
    case seriesTooShort(length: Int, pastSteps: Int, futureSteps: Int)
    /// The list of target columns was empty.
    case noTargetColumns
    /// A column index was outside `0..<featureCount`.
    case columnOutOfRange(column: Int, featureCount: Int)
    /// A value was NaN or infinite; `row` counts samples (time steps), both 0-based.
    case nonFinite(row: Int, column: Int)
    /// The training fraction of a split was not strictly between 0 and 1.
    case invalidTrainFraction(Double)
    /// A split would leave the training or the test side without windows.
    case emptySplit(windowCount: Int, trainFraction: Double)
    /// A range of windows reached outside `0..<count`.
    case windowRangeOutOfBounds(lowerBound: Int, upperBound: Int, count: Int)

    // MARK: Scaling

    /// A scaler was used before `fit`.
    case notFitted
    /// Data had a different number of features (last axis) than expected.
    case featureCountMismatch(expected: Int, actual: Int)
    /// Data for a scaler held no samples, or was a scalar without a feature axis.
    case noSamples(shape: [Int])
    /// A min-max scaler's target range was empty or not finite.
    case invalidFeatureRange(lower: Float, upper: Float)

    // MARK: Files

    /// A file could not be read.
    case unreadableFile(path: String, reason: String)
    /// A CSV source held no header row.
    case emptyFile(file: String)
    /// A CSV source held a header row but no data rows.
    case noDataRows(file: String)
    /// Two header fields had the same name.
    case duplicateColumn(file: String, name: String)
    /// A requested column name is not in the header.
    case missingColumn(file: String, name: String, available: [String])
    /// A row had a different number of fields than the header.
    case fieldCountMismatch(file: String, line: Int, expected: Int, actual: Int)
    /// A quoted field was not closed, or text followed its closing quote.
    case malformedQuotes(file: String, line: Int)
    /// A cell that should hold a finite number was empty or held something else.
    case invalidCell(file: String, line: Int, column: String, text: String)

    /// A sentence saying what went wrong and where.
    public var description: String {
        switch self {
        case .invalidPastSteps(let steps):
            return "pastSteps must be at least 1, got \(steps)."
        case .invalidFutureSteps(let steps):
            return "futureSteps must be at least 1, got \(steps)."
        case .invalidStride(let stride):
            return "The stride between windows must be at least 1, got \(stride)."
        case .invalidSeriesShape(let shape):
            return "A series must be a matrix [steps, features], got shape \(shape); "
                + "reshape a single feature with reshaped(to: [-1, 1])."
        case let .seriesTooShort(length, pastSteps, futureSteps):
            return "The series has \(length) steps, but one window needs pastSteps + futureSteps = "
                + "\(pastSteps) + \(futureSteps) = \(pastSteps + futureSteps)."
        case .noTargetColumns:
            return "The list of target columns is empty; pass nil to predict every column."
        case let .columnOutOfRange(column, featureCount):
            return "Column \(column) is out of range for data with \(featureCount) feature"
                + "\(featureCount == 1 ? "" : "s") (valid: 0..<\(featureCount))."
        case let .nonFinite(row, column):
            return "The value at row \(row), column \(column) is not finite (NaN or infinity)."
        case .invalidTrainFraction(let fraction):
            return "The training fraction must lie strictly between 0 and 1, got \(fraction)."
        case let .emptySplit(windowCount, trainFraction):
            return "Splitting \(windowCount) window\(windowCount == 1 ? "" : "s") at fraction \(trainFraction) "
                + "leaves the training or the test side empty."
        case let .windowRangeOutOfBounds(lowerBound, upperBound, count):
            return "The range \(lowerBound)..<\(upperBound) reaches outside the \(count) windows (0..<\(count))."
        case .notFitted:
            return "The scaler has not been fitted; call fit(_:) on training data first."
        case let .featureCountMismatch(expected, actual):
            return "Expected \(expected) feature\(expected == 1 ? "" : "s") on the last axis, got \(actual)."
        case .noSamples(let shape):
            return "Data of shape \(shape) holds no samples along a feature axis; a scaler needs rank 1 or more "
                + "and at least one element."
        case let .invalidFeatureRange(lower, upper):
            return "The feature range \(lower)...\(upper) must be finite with its lower bound below its upper bound."
        case let .unreadableFile(path, reason):
            return "Cannot read \(path): \(reason)"
        case .emptyFile(let file):
            return "\(file) is empty; a CSV file needs a header row."
        case .noDataRows(let file):
            return "\(file) has a header row but no data rows."
        case let .duplicateColumn(file, name):
            return "\(file): the header names column '\(name)' more than once."
        case let .missingColumn(file, name, available):
            return "\(file) has no column '\(name)'; available columns: "
                + available.map { "'\($0)'" }.joined(separator: ", ") + "."
        case let .fieldCountMismatch(file, line, expected, actual):
            return "\(file), line \(line): expected \(expected) field\(expected == 1 ? "" : "s") "
                + "as in the header, found \(actual)."
        case let .malformedQuotes(file, line):
            return "\(file), line \(line): a quoted field is not closed, or text follows its closing quote."
        case let .invalidCell(file, line, column, text):
            let problem = text.isEmpty ? "is empty" : "holds '\(text)', which is not a finite number"
            return "\(file), line \(line), column '\(column)': the cell \(problem)."
        }
    }
}
