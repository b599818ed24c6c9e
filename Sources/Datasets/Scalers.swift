import Graph

/// A per-feature rescaling fitted on training data and undone on predictions.
///
/// Features lie on the last axis, so one fitted scaler handles a series `[steps, features]`, windows
/// `[count, pastSteps, features]` and anything else with the same last axis.
public protocol FeatureScaler: Sendable {
    /// The number of features seen by ``fit(_:)``, or `nil` before fitting.
    var featureCount: Int? { get }
    /// Learns the per-feature statistics of `data` (any rank ≥ 1; features on the last axis).
    mutating func fit(_ data: Tensor) throws
    /// Returns `data` scaled feature by feature; its last axis must hold every fitted feature.
    func transform(_ data: Tensor) throws -> Tensor
    /// Returns `data` scaled with the statistics of the fitted features `columns`, which its last axis holds
    /// in that order.
    func transform(_ data: Tensor, columns: [Int]) throws -> Tensor
    /// Returns scaled data mapped back to the original units; the last axis must hold every fitted feature.
    func inverseTransform(_ data: Tensor) throws -> Tensor
    /// Returns scaled data mapped back to the original units, where the last axis holds the fitted features
    /// `columns` in that order (for targets that are a selection of the series' columns).
    func inverseTransform(_ data: Tensor, columns: [Int]) throws -> Tensor
}

extension FeatureScaler {
    /// Whether ``fit(_:)`` has been called.
    public var isFitted: Bool { featureCount != nil }

    /// Fits on `data` and returns it transformed.
    public mutating func fitTransform(_ data: Tensor) throws -> Tensor {
        try fit(data)
        return try transform(data)
    }

    /// Returns scaled data mapped back to the original units of one fitted feature, whatever its shape:
    /// every element is treated as a value of `column` (for example targets `[count, futureSteps, 1]`, or
    /// predictions `[count, futureSteps]` of a single target).
    public func inverseTransform(_ data: Tensor, column: Int) throws -> Tensor {
        try inverseTransform(data.reshaped(to: [data.count, 1]), columns: [column]).reshaped(to: data.shape)
    }
}

/// Scales each feature linearly so that its training minimum and maximum map to the ends of
/// ``featureRange`` (scikit-learn's `MinMaxScaler`).
///
/// ```
/// x' = (x - min) / (max - min) * (upper - lower) + lower
/// ```
/// A constant feature (`max == min`) uses `max - min = 1`, so its training value maps to `lower`,
/// nothing divides by zero and the inverse still returns the constant.
public struct MinMaxScaler: FeatureScaler, Equatable, Codable {
    /// The range the training data is mapped to.
    public let featureRange: ClosedRange<Float>
    /// The training minimum of each feature, or `nil` before fitting.
    public private(set) var minimums: [Float]?
    /// The training maximum of each feature, or `nil` before fitting.
    public private(set) var maximums: [Float]?

    /// Creates an unfitted scaler mapping to `featureRange`.
    public init(featureRange: ClosedRange<Float> = 0...1) {
        self.featureRange = featureRange
    }

    /// The number of features seen by ``fit(_:)``, or `nil` before fitting.
    public var featureCount: Int? { minimums?.count }

    /// Learns each feature's minimum and maximum.
    ///
    /// - Throws: ``DataError`` when the range is empty or not finite, `data` has no samples, or holds NaN
    ///   or infinity (with the sample row and feature column).
    public mutating func fit(_ data: Tensor) throws {
        let lower = featureRange.lowerBound, upper = featureRange.upperBound
        guard lower.isFinite && upper.isFinite && lower < upper else {
            throw DataError.invalidFeatureRange(lower: lower, upper: upper)
        }
        let features = try checkedFeatureCount(of: data)
        let period = patternLength(featureCount: features)
        var low = [Float](repeating: .infinity, count: period)
        var high = [Float](repeating: -.infinity, count: period)
        data.withUnsafeBufferPointer { values in
            low.withUnsafeMutableBufferPointer { low in
                high.withUnsafeMutableBufferPointer { high in
                    forEachChunk(count: values.count, period: period) { start, length in
                        for i in 0..<length {
                            low[i] = Swift.min(low[i], values[start + i])
                            high[i] = Swift.max(high[i], values[start + i])
                        }
                    }
                }
            }
        }
        minimums = (0..<features).map { column in
            stride(from: column, to: period, by: features).reduce(Float.infinity) { Swift.min($0, low[$1]) }
        }
        maximums = (0..<features).map { column in
            stride(from: column, to: period, by: features).reduce(-Float.infinity) { Swift.max($0, high[$1]) }
        }
    }

    /// Returns `data` mapped feature by feature into ``featureRange``.
    ///
    /// - Throws: ``DataError/notFitted`` or ``DataError/featureCountMismatch(expected:actual:)``.
    public func transform(_ data: Tensor) throws -> Tensor {
        try affine().apply(to: data, columns: nil, inverse: false)
    }

    /// Returns `data`, whose last axis holds the fitted features `columns`, mapped into ``featureRange``.
    ///
    /// - Throws: ``DataError`` when unfitted, a column is out of range or the last axis is not `columns.count`.
    public func transform(_ data: Tensor, columns: [Int]) throws -> Tensor {
        try affine().apply(to: data, columns: columns, inverse: false)
    }

    /// Returns scaled data mapped back to the original units.
    ///
    /// - Throws: ``DataError/notFitted`` or ``DataError/featureCountMismatch(expected:actual:)``.
    public func inverseTransform(_ data: Tensor) throws -> Tensor {
        try affine().apply(to: data, columns: nil, inverse: true)
    }

    /// Returns scaled data, whose last axis holds the fitted features `columns`, in the original units.
    ///
    /// - Throws: ``DataError`` when unfitted, a column is out of range or the last axis is not `columns.count`.
    public func inverseTransform(_ data: Tensor, columns: [Int]) throws -> Tensor {
        try affine().apply(to: data, columns: columns, inverse: true)
    }

    private func affine() throws -> ColumnAffine {
        guard let minimums, let maximums else { throw DataError.notFitted }
        // A decoded scaler can hold lists of different lengths; applying it would index past the shorter.
        guard minimums.count == maximums.count else {
            throw DataError.featureCountMismatch(expected: minimums.count, actual: maximums.count)
        }
        let width = featureRange.upperBound - featureRange.lowerBound
        let spreads = zip(minimums, maximums).map { low, high in high > low ? (high - low) / width : 1 / width }
        return ColumnAffine(centers: minimums, spreads: spreads, origin: featureRange.lowerBound)
    }
}

/// Standardizes each feature to zero mean and unit variance over the training data
/// (scikit-learn's `StandardScaler`).
///
/// ```
/// x' = (x - mean) / std        std = sqrt(mean((x - mean)²))   (population, not sample)
/// ```
/// A constant feature (`std == 0`) divides by 1 instead, so it maps to 0 and inverts exactly.
public struct StandardScaler: FeatureScaler, Equatable, Codable {
    /// The training mean of each feature, or `nil` before fitting.
    public private(set) var means: [Float]?
    /// The population standard deviation of each feature (0 for a constant one), or `nil` before fitting.
    public private(set) var standardDeviations: [Float]?

    /// Creates an unfitted scaler.
    public init() {}

    /// The number of features seen by ``fit(_:)``, or `nil` before fitting.
    public var featureCount: Int? { means?.count }

    /// Learns each feature's mean and population standard deviation (accumulated in `Double`).
    ///
    /// - Throws: ``DataError`` when `data` has no samples or holds NaN or infinity (with the sample row and
    ///   feature column).
    public mutating func fit(_ data: Tensor) throws {
        let features = try checkedFeatureCount(of: data)
        let samples = Double(data.count / features), period = patternLength(featureCount: features)
        // Sums per pattern position, folded into per-feature totals once the pass is done.
        func perFeature(_ pattern: [Double]) -> [Double] {
            (0..<features).map { column in
                stride(from: column, to: period, by: features).reduce(0) { $0 + pattern[$1] }
            }
        }
        var sums = [Double](repeating: 0, count: period)
        data.withUnsafeBufferPointer { values in
            sums.withUnsafeMutableBufferPointer { sums in
                forEachChunk(count: values.count, period: period) { start, length in
                    for i in 0..<length { sums[i] += Double(values[start + i]) }
                }
            }
        }
        let featureMeans = perFeature(sums).map { $0 / samples }
        // A second pass over deviations avoids the cancellation of E[x²] - E[x]² for large values.
        let meanPattern = (0..<period).map { featureMeans[$0 % features] }
        var squares = [Double](repeating: 0, count: period)
        data.withUnsafeBufferPointer { values in
            meanPattern.withUnsafeBufferPointer { mean in
                squares.withUnsafeMutableBufferPointer { squares in
                    forEachChunk(count: values.count, period: period) { start, length in
                        for i in 0..<length {
                            let deviation = Double(values[start + i]) - mean[i]
                            squares[i] += deviation * deviation
                        }
                    }
                }
            }
        }
        means = featureMeans.map { Float($0) }
        standardDeviations = perFeature(squares).map { Float(($0 / samples).squareRoot()) }
    }

    /// Returns `data` standardized feature by feature.
    ///
    /// - Throws: ``DataError/notFitted`` or ``DataError/featureCountMismatch(expected:actual:)``.
    public func transform(_ data: Tensor) throws -> Tensor {
        try affine().apply(to: data, columns: nil, inverse: false)
    }

    /// Returns `data`, whose last axis holds the fitted features `columns`, standardized.
    ///
    /// - Throws: ``DataError`` when unfitted, a column is out of range or the last axis is not `columns.count`.
    public func transform(_ data: Tensor, columns: [Int]) throws -> Tensor {
        try affine().apply(to: data, columns: columns, inverse: false)
    }

    /// Returns standardized data mapped back to the original units.
    ///
    /// - Throws: ``DataError/notFitted`` or ``DataError/featureCountMismatch(expected:actual:)``.
    public func inverseTransform(_ data: Tensor) throws -> Tensor {
        try affine().apply(to: data, columns: nil, inverse: true)
    }

    /// Returns standardized data, whose last axis holds the fitted features `columns`, in the original units.
    ///
    /// - Throws: ``DataError`` when unfitted, a column is out of range or the last axis is not `columns.count`.
    public func inverseTransform(_ data: Tensor, columns: [Int]) throws -> Tensor {
        try affine().apply(to: data, columns: columns, inverse: true)
    }

    private func affine() throws -> ColumnAffine {
        guard let means, let standardDeviations else { throw DataError.notFitted }
        guard means.count == standardDeviations.count else {
            throw DataError.featureCountMismatch(expected: means.count, actual: standardDeviations.count)
        }
        return ColumnAffine(centers: means, spreads: standardDeviations.map { $0 > 0 ? $0 : 1 }, origin: 0)
    }
}

/// Returns the length of the feature axis of data to fit on, after checking it has samples and only
/// finite values.
private func checkedFeatureCount(of data: Tensor) throws -> Int {
    guard data.rank >= 1, data.count > 0 else { throw DataError.noSamples(shape: data.shape) }
    let features = data.shape[data.rank - 1]
    try data.withUnsafeBufferPointer { values in
        if let index = values.firstIndex(where: { !$0.isFinite }) {
            throw DataError.nonFinite(row: index / features, column: index % features)
        }
    }
    return features
}

/// The per-feature map both scalers reduce to: `y = (x - center) / spread + origin`.
private struct ColumnAffine {
    let centers: [Float]
    let spreads: [Float]
    let origin: Float

    /// Applies the map (or its inverse) to `data`, whose last axis holds the features `columns`
    /// (all of them, in order, when `nil`).
    func apply(to data: Tensor, columns: [Int]?, inverse: Bool) throws -> Tensor {
        let featureCount = centers.count
        let selected = columns ?? Array(0..<featureCount)
        if let bad = selected.first(where: { $0 < 0 || $0 >= featureCount }) {
            throw DataError.columnOutOfRange(column: bad, featureCount: featureCount)
        }
        guard data.rank >= 1 else { throw DataError.noSamples(shape: data.shape) }
        let width = data.shape[data.rank - 1]
        guard width == selected.count else {
            throw DataError.featureCountMismatch(expected: selected.count, actual: width)
        }
        guard width > 0 else { return data }
        let period = patternLength(featureCount: width)
        let center = (0..<period).map { centers[selected[$0 % width]] }
        let spread = (0..<period).map { spreads[selected[$0 % width]] }
        let origin = self.origin
        var result = data
        result.withUnsafeMutableBufferPointer { values in
            center.withUnsafeBufferPointer { center in
                spread.withUnsafeBufferPointer { spread in
                    if inverse {
                        forEachChunk(count: values.count, period: period) { start, length in
                            for i in 0..<length {
                                values[start + i] = (values[start + i] - origin) * spread[i] + center[i]
                            }
                        }
                    } else {
                        forEachChunk(count: values.count, period: period) { start, length in
                            for i in 0..<length {
                                values[start + i] = (values[start + i] - center[i]) / spread[i] + origin
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}

/// The length of the per-column parameter patterns: a whole number of rows near 1,024 elements, so that
/// the loops over data run straight through a chunk (and vectorize) instead of cycling through columns.
private func patternLength(featureCount: Int) -> Int {
    featureCount * Swift.max(1, 1_024 / featureCount)
}

/// Calls `body(start, length)` for consecutive chunks of `count` elements, each `period` long but the last.
@inline(__always)
private func forEachChunk(count: Int, period: Int, _ body: (Int, Int) -> Void) {
    var start = 0
    while start < count {
        body(start, Swift.min(period, count - start))
        start += period
    }
}
