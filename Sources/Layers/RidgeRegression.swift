import Graph
import Kernels

/// Linear least squares with an L2 penalty, solved in closed form in `Double`.
///
/// Rows are added in any number of batches; only sums are kept (`Σ s sᵀ`, `Σ s`, `Σ y`, `Σ s yᵀ`), so
/// memory does not grow with the number of rows. ``solve(ridge:)`` then returns the weights `W`
/// `[featureCount, outputCount]` and the bias `b` `[outputCount]` that minimise
/// ```
/// ‖S W + 1 bᵀ − Y‖² + ridge · ‖W‖²
/// ```
/// The bias is not penalised: the problem is solved on centred features and targets,
/// `(S̄ᵀS̄ + ridge · I) W = S̄ᵀȲ` by Cholesky factorisation, then `b = mean(y) − Wᵀ mean(s)`.
/// Centring also keeps the system well conditioned when every feature has a large common offset,
/// as reservoir states do. `ridge` is not scaled by the number of rows.
public struct RidgeRegression {
    /// The number of inputs per row (the columns of `S`).
    public let featureCount: Int
    /// The number of targets per row (the columns of `Y`).
    public let outputCount: Int
    /// The number of rows added so far.
    public private(set) var sampleCount = 0
    /// `Σ s sᵀ`, upper triangle only, `[featureCount, featureCount]` row-major.
    private var gram: [Double]
    private var featureSums: [Double]
    private var targetSums: [Double]
    /// `Σ s yᵀ`, `[featureCount, outputCount]` row-major.
    private var crossProducts: [Double]

    /// Creates an empty regression for rows of `featureCount` features and `outputCount` targets.
    public init(featureCount: Int, outputCount: Int) {
        check(featureCount > 0 && outputCount > 0,
                     "RidgeRegression: sizes must be positive, got \(featureCount) features, \(outputCount) outputs")
        self.featureCount = featureCount
        self.outputCount = outputCount
        gram = Array(repeating: 0, count: featureCount * featureCount)
        featureSums = Array(repeating: 0, count: featureCount)
        targetSums = Array(repeating: 0, count: outputCount)
        crossProducts = Array(repeating: 0, count: featureCount * outputCount)
    }

    /// Adds rows: `features` `[rows, featureCount]` and their `targets` `[rows, outputCount]`.
    ///
    /// Throws ``RidgeRegressionError/shapeMismatch(argument:expected:actual:)`` when a shape is not that.
    public mutating func add(features: Tensor, targets: Tensor) throws(RidgeRegressionError) {
        guard features.rank == 2, features.shape[1] == featureCount else {
            throw .shapeMismatch(argument: "features", expected: "[rows, \(featureCount)]", actual: features.shape)
        }
        guard targets.shape == [features.shape[0], outputCount] else {
            throw .shapeMismatch(argument: "targets", expected: "\([features.shape[0], outputCount])",
                                 actual: targets.shape)
        }
        add(features, targets)
    }

    /// Adds rows whose shapes are known to fit (`[rows, featureCount]`, `[rows, outputCount]`).
    mutating func add(_ features: Tensor, _ targets: Tensor) {
        check(features.rank == 2 && features.shape[1] == featureCount && targets.shape == [features.shape[0], outputCount],
              "RidgeRegression: rows \(features.shape) and targets \(targets.shape) do not fit")
        let rows = features.shape[0]
        guard rows > 0 else { return }
        let status = features.withUnsafeBufferPointer { s in
            targets.withUnsafeBufferPointer { y in
                unroll_ridge_accumulate(&gram, &featureSums, &crossProducts, &targetSums, s.baseAddress, y.baseAddress,
                                        rows, featureCount, outputCount)
            }
        }
        check(status == 0, "RidgeRegression: out of memory for a block of \(featureCount) features")
        sampleCount += rows
    }

    /// Returns the weights `[featureCount, outputCount]` and bias `[outputCount]` of the fit.
    ///
    /// Throws ``RidgeRegressionError/noSamples`` before any row was added and
    /// ``RidgeRegressionError/notPositiveDefinite(ridge:)`` when `S̄ᵀS̄ + ridge · I` is numerically
    /// singular (features that are linear combinations of others with `ridge` 0 or too small).
    public func solve(ridge: Double) throws(RidgeRegressionError) -> (weights: Tensor, bias: Tensor) {
        guard sampleCount > 0 else { throw .noSamples }
        guard ridge >= 0, ridge.isFinite else { throw .invalidRidge(ridge) }
        let f = featureCount, o = outputCount, n = Double(sampleCount)
        let featureMeans = featureSums.map { $0 / n }
        let targetMeans = targetSums.map { $0 / n }
        // Centred Gram matrix (full, symmetric) and centred cross products.
        var system = [Double](repeating: 0, count: f * f)
        for i in 0..<f {
            for j in i..<f {
                let value = gram[i * f + j] - n * featureMeans[i] * featureMeans[j]
                system[i * f + j] = value
                system[j * f + i] = value
            }
            system[i * f + i] += ridge
        }
        var solution = [Double](repeating: 0, count: f * o)
        for i in 0..<f {
            for m in 0..<o { solution[i * o + m] = crossProducts[i * o + m] - n * featureMeans[i] * targetMeans[m] }
        }
        guard unroll_cholesky_solve(&system, f, &solution, o) == 0 else { throw .notPositiveDefinite(ridge: ridge) }
        var bias = targetMeans
        for m in 0..<o {
            for i in 0..<f { bias[m] -= featureMeans[i] * solution[i * o + m] }
        }
        return (Tensor(shape: [f, o], scalars: solution.map { Float($0) }), Tensor(bias.map { Float($0) }))
    }
}

/// Why a ridge regression could not take its data or could not be solved.
public enum RidgeRegressionError: Error, Equatable, CustomStringConvertible {
    /// An argument's shape is not the expected one.
    case shapeMismatch(argument: String, expected: String, actual: [Int])
    /// ``RidgeRegression/solve(ridge:)`` was called before any row was added.
    case noSamples
    /// The ridge is negative or not finite.
    case invalidRidge(Double)
    /// The regularised system is numerically singular: raise the ridge.
    case notPositiveDefinite(ridge: Double)

    /// A sentence naming the problem.
    public var description: String {
        switch self {
        case let .shapeMismatch(argument, expected, actual):
            "RidgeRegression: \(argument) should have shape \(expected), got \(actual)"
        case .noSamples:
            "RidgeRegression: no rows were added before solving"
        case let .invalidRidge(ridge):
            "RidgeRegression: the ridge must be finite and not negative, got \(ridge)"
        case let .notPositiveDefinite(ridge):
            "RidgeRegression: the system is singular with ridge \(ridge); use a larger ridge"
        }
    }
}
