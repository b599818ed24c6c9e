import Graph

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
        features.withUnsafeBufferPointer { s in
            targets.withUnsafeBufferPointer { y in
                guard let s = s.baseAddress, let y = y.baseAddress else { return }
                add(featureRows: s, targetRows: y, rows: features.shape[0])
            }
        }
    }

    /// Adds `rows` contiguous rows of `featureCount` features and of `outputCount` targets.
    mutating func add(featureRows: UnsafePointer<Float>, targetRows: UnsafePointer<Float>, rows: Int) {
        let f = featureCount, o = outputCount
        // Four rows at a time, widened to Double once, so each Gram entry is loaded and stored a
        // quarter as often: this loop dominates a readout fit.
        var block = [Double](repeating: 0, count: 4 * f)
        gram.withUnsafeMutableBufferPointer { gramBuffer in
            crossProducts.withUnsafeMutableBufferPointer { crossBuffer in
                featureSums.withUnsafeMutableBufferPointer { featureSumBuffer in
                    targetSums.withUnsafeMutableBufferPointer { targetSumBuffer in
                        block.withUnsafeMutableBufferPointer { blockBuffer in
                            let g = gramBuffer.baseAddress!, c = crossBuffer.baseAddress!
                            let sums = featureSumBuffer.baseAddress!, targetTotals = targetSumBuffer.baseAddress!
                            let b = blockBuffer.baseAddress!
                            var row = 0
                            while row < rows {
                                let width = Swift.min(4, rows - row)
                                let source = featureRows + row * f
                                var i = 0
                                while i < width * f { b[i] = Double(source[i]); i += 1 }
                                while i < 4 * f { b[i] = 0; i += 1 }
                                let r0 = b, r1 = b + f, r2 = b + 2 * f, r3 = b + 3 * f
                                i = 0
                                while i < f {
                                    let a0 = r0[i], a1 = r1[i], a2 = r2[i], a3 = r3[i]
                                    let gi = g + i * f
                                    var j = i
                                    while j < f {
                                        gi[j] += a0 * r0[j] + a1 * r1[j] + a2 * r2[j] + a3 * r3[j]
                                        j += 1
                                    }
                                    sums[i] += a0 + a1 + a2 + a3
                                    i += 1
                                }
                                var k = 0
                                while k < width {
                                    let s = b + k * f, y = targetRows + (row + k) * o
                                    var m = 0
                                    while m < o {
                                        let target = Double(y[m])
                                        targetTotals[m] += target
                                        let cm = c + m
                                        i = 0
                                        while i < f { cm[i * o] += s[i] * target; i += 1 }
                                        m += 1
                                    }
                                    k += 1
                                }
                                row += width
                            }
                        }
                    }
                }
            }
        }
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
        guard Cholesky.solve(&system, size: f, rightHandSides: &solution, count: o) else {
            throw .notPositiveDefinite(ridge: ridge)
        }
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

/// Cholesky factorisation `A = L Lᵀ` and the two triangular solves, in place, in `Double`.
enum Cholesky {
    /// Solves `A X = B` for a symmetric positive definite `A` `[size, size]` and `B` `[size, count]`
    /// (both row-major). On return `b` holds `X` and the lower triangle of `a` holds `L`.
    ///
    /// Returns `false`, leaving the arrays partly overwritten, when a pivot is not clearly positive
    /// (below `size · ε` times the largest diagonal entry): `A` is singular to working precision.
    static func solve(_ a: inout [Double], size n: Int, rightHandSides b: inout [Double], count: Int) -> Bool {
        check(a.count == n * n && b.count == n * count, "Cholesky.solve: array sizes do not match \(n)")
        var largestDiagonal = 0.0
        for i in 0..<n { largestDiagonal = Swift.max(largestDiagonal, Swift.abs(a[i * n + i])) }
        let threshold = Double(n) * Double.ulpOfOne * largestDiagonal
        return a.withUnsafeMutableBufferPointer { aBuffer in
            b.withUnsafeMutableBufferPointer { bBuffer in
                let a = aBuffer.baseAddress!, b = bBuffer.baseAddress!
                // Left-looking factorisation, row by row: L[i][j] = (A[i][j] − Σ_k<j L[i][k] L[j][k]) / L[j][j].
                var i = 0
                while i < n {
                    let rowI = a + i * n
                    var j = 0
                    while j <= i {
                        let rowJ = a + j * n
                        var sum = rowI[j]
                        var k = 0
                        while k < j { sum -= rowI[k] * rowJ[k]; k += 1 }
                        if i == j {
                            guard sum > threshold, sum.isFinite else { return false }
                            rowI[i] = sum.squareRoot()
                        } else {
                            rowI[j] = sum / rowJ[j]
                        }
                        j += 1
                    }
                    i += 1
                }
                // Forward substitution L Z = B, then back substitution Lᵀ X = Z, all columns together.
                i = 0
                while i < n {
                    let rowI = a + i * n, bi = b + i * count
                    var k = 0
                    while k < i {
                        let factor = rowI[k], bk = b + k * count
                        var m = 0
                        while m < count { bi[m] -= factor * bk[m]; m += 1 }
                        k += 1
                    }
                    var m = 0
                    while m < count { bi[m] /= rowI[i]; m += 1 }
                    i += 1
                }
                i = n - 1
                while i >= 0 {
                    let bi = b + i * count
                    var k = i + 1
                    while k < n {
                        let factor = a[k * n + i], bk = b + k * count
                        var m = 0
                        while m < count { bi[m] -= factor * bk[m]; m += 1 }
                        k += 1
                    }
                    var m = 0
                    while m < count { bi[m] /= a[i * n + i]; m += 1 }
                    i -= 1
                }
                return true
            }
        }
    }
}
