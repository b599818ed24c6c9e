import Foundation

/// A fixed matrix kept by its nonzero entries, row by row (compressed sparse rows), as the right operand of
/// ``Node/matmul(_:)-(SparseMatrix)``: an echo state network's reservoir, where most weights are zero.
///
/// It keeps its dense value too: for more than a few rows, or a matrix that is not sparse enough, the
/// product runs as one dense matrix product instead. Measured in release builds, the scalar sparse loop
/// matches the vectorised GEMM for one row at 10 % density and wins below it; denser matrices or more rows
/// favour the GEMM. The matrix receives no gradient (it is a static argument of its op, not an input).
public struct SparseMatrix: Sendable, Equatable {
    /// The matrix as an ordinary tensor, `[rows, columns]`.
    public let dense: Tensor
    /// Where each row's entries start in ``columns`` and ``values``; one more entry than rows.
    private let rowStarts: [Int]
    private let columns: [Int]
    private let values: [Float]

    /// Creates the sparse form of a rank-2 tensor.
    public init(_ matrix: Tensor) {
        check(matrix.rank == 2, "SparseMatrix: needs a matrix, got \(matrix.shape)")
        let (rows, columnCount) = (matrix.shape[0], matrix.shape[1])
        var rowStarts = [0], columns: [Int] = [], values: [Float] = []
        rowStarts.reserveCapacity(rows + 1)
        let m = matrix.base
        for i in 0..<rows {
            for j in 0..<columnCount where m[i * columnCount + j] != 0 {
                columns.append(j)
                values.append(m[i * columnCount + j])
            }
            rowStarts.append(columns.count)
        }
        dense = matrix
        self.rowStarts = rowStarts
        self.columns = columns
        self.values = values
    }

    /// `[rows, columns]`.
    public var shape: [Int] { dense.shape }
    /// The number of nonzero entries.
    public var nonzeroCount: Int { values.count }

    /// Calls `body` with the row starts, column indices and values as buffers.
    private func withEntries<R>(_ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<Int>, UnsafeBufferPointer<Float>) -> R) -> R {
        rowStarts.withUnsafeBufferPointer { starts in
            columns.withUnsafeBufferPointer { columns in
                values.withUnsafeBufferPointer { values in body(starts, columns, values) }
            }
        }
    }

    /// Whether a product with `rowCount` rows is faster skipping zeros than as a dense GEMM.
    private func prefersSparseProduct(rowCount: Int) -> Bool {
        rowCount <= 4 && nonzeroCount * 8 <= dense.count
    }

    /// Returns `x · self` for `x` `[n, rows]`: `[n, columns]`.
    func product(_ x: Tensor) -> Tensor {
        check(x.rank == 2 && x.shape[1] == shape[0], "sparse matmul: \(x.shape) x \(shape) do not fit")
        guard prefersSparseProduct(rowCount: x.shape[0]) else { return x.matmul(dense) }
        let (count, rows, columnCount) = (x.shape[0], shape[0], shape[1])
        let result = Tensor(shape: [count, columnCount], repeating: 0)
        let y = result.base, input = x.base
        withEntries { starts, columns, values in
            for b in 0..<count {
                let xRow = input + b * rows, yRow = y + b * columnCount
                var i = 0
                while i < rows {
                    let scale = xRow[i]
                    var e = starts[i]
                    let end = starts[i + 1]
                    while e < end { yRow[columns[e]] += scale * values[e]; e += 1 }
                    i += 1
                }
            }
        }
        return result
    }

    /// Returns `g · selfᵀ` for `g` `[n, columns]`: `[n, rows]` (the gradient of ``product(_:)``'s input).
    func transposedProduct(_ g: Tensor) -> Tensor {
        check(g.rank == 2 && g.shape[1] == shape[1], "sparse matmul gradient: \(g.shape) x \(shape)ᵀ do not fit")
        guard prefersSparseProduct(rowCount: g.shape[0]) else { return g.matmul(dense, transposingOther: true) }
        let (count, rows, columnCount) = (g.shape[0], shape[0], shape[1])
        let result = Tensor(uninitializedShape: [count, rows])
        let dx = result.base, gradient = g.base
        withEntries { starts, columns, values in
            for b in 0..<count {
                let gRow = gradient + b * columnCount, dxRow = dx + b * rows
                for i in 0..<rows {
                    var sum: Float = 0
                    for e in starts[i]..<starts[i + 1] { sum += gRow[columns[e]] * values[e] }
                    dxRow[i] = sum
                }
            }
        }
        return result
    }

    /// Returns the spectral radius (the largest eigenvalue modulus) of this square matrix, estimated from the
    /// growth rate of power iteration in `Double`.
    ///
    /// A random matrix's eigenvalues fill a disc, so its leading eigenvalue is often a complex pair with
    /// others close behind; the iterate then never settles, but its growth still does:
    /// ```
    /// ρ ≈ (‖Wᴷ v‖ / ‖Wᴷ⁰ v‖)^(1 / (K − K₀))
    /// ```
    /// with `K₀ = iterations / 5` steps of warm-up to let transients decay. The error is about
    /// `log(c) / (K − K₀)`, where `c` bounds how much eigenvectors of nearly equal modulus interfere:
    /// a fraction of a percent for the default 1,000 iterations. A nilpotent matrix gives 0. Each product
    /// costs the nonzeros, not n².
    public func estimatedSpectralRadius(iterations: Int = 1000) -> Float {
        check(shape[0] == shape[1], "estimatedSpectralRadius: needs a square matrix, got \(shape)")
        check(iterations >= 5, "estimatedSpectralRadius: needs at least 5 iterations, got \(iterations)")
        let n = shape[0]
        var generator = SeededGenerator(seed: 0x5EC7_AD1A)
        var vector = (0..<n).map { _ in Double(generator.nextFloat(in: -1...1)) + 1e-3 }
        var product = [Double](repeating: 0, count: n)
        let warmUp = iterations / 5
        var logGrowth = 0.0
        var vanished = false
        withEntries { starts, columns, values in
            vector.withUnsafeMutableBufferPointer { v in
                product.withUnsafeMutableBufferPointer { w in
                    var norm = 0.0
                    for i in 0..<n { norm += v[i] * v[i] }
                    norm = norm.squareRoot()
                    for i in 0..<n { v[i] /= norm }
                    for k in 0..<iterations {
                        norm = 0
                        var i = 0
                        while i < n {
                            var sum = 0.0
                            var e = starts[i]
                            let end = starts[i + 1]
                            while e < end { sum += Double(values[e]) * v[columns[e]]; e += 1 }
                            w[i] = sum
                            norm += sum * sum
                            i += 1
                        }
                        norm = norm.squareRoot()
                        guard norm > 0, norm.isFinite else { vanished = true; return }
                        i = 0
                        while i < n { v[i] = w[i] / norm; i += 1 }
                        if k >= warmUp { logGrowth += Foundation.log(norm) }
                    }
                }
            }
        }
        return vanished ? 0 : Float(Foundation.exp(logGrowth / Double(iterations - warmUp)))
    }
}

extension Node {
    /// Returns the matrix product `self · matrix` of a rank-2 node `[n, rows]` and a fixed sparse matrix
    /// (`[n, columns]`); the gradient flows to `self` only.
    public func matmul(_ matrix: SparseMatrix) -> Node {
        Node.make(.sparseMatmul(matrix), self, matrix.product(value))
    }
}
