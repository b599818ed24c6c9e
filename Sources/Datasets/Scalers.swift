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
public struct MinMaxScaler: AffineFeatureScaler, Equatable, Codable {
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
        let rows = data.reshaped(to: [-1, features])
        minimums = rows.min(alongAxis: 0).scalars
        maximums = rows.max(alongAxis: 0).scalars
    }

    func affine() throws -> ColumnAffine {
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
public struct StandardScaler: AffineFeatureScaler, Equatable, Codable {
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
        let (featureMeans, variances) = data.reshaped(to: [-1, features]).columnMeansAndVariances()
        means = featureMeans.map { Float($0) }
        standardDeviations = variances.map { Float($0.squareRoot()) }
    }

    func affine() throws -> ColumnAffine {
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
    if let index = data.firstNonFiniteIndex { throw DataError.nonFinite(row: index / features, column: index % features) }
    return features
}

/// A scaler whose map is one ``ColumnAffine`` per fitted state: it supplies the map, and the transforms are
/// written once here.
protocol AffineFeatureScaler: FeatureScaler {
    /// Returns the fitted map, or throws ``DataError/notFitted``.
    func affine() throws -> ColumnAffine
}

extension AffineFeatureScaler {
    /// Returns `data` scaled feature by feature.
    ///
    /// - Throws: ``DataError/notFitted`` or ``DataError/featureCountMismatch(expected:actual:)``.
    public func transform(_ data: Tensor) throws -> Tensor {
        try affine().apply(to: data, columns: nil, inverse: false)
    }

    /// Returns `data`, whose last axis holds the fitted features `columns`, scaled.
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
}

/// The per-feature map both scalers reduce to: `y = (x - center) / spread + origin`.
struct ColumnAffine {
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
        let center = Tensor(selected.map { centers[$0] }), spread = Tensor(selected.map { spreads[$0] })
        return inverse ? (data - origin) * spread + center : (data - center) / spread + origin
    }
}
