import Foundation

extension Tensor {
    /// Returns the sum over `axes`; reduced axes are dropped unless `keepingDimensions` is true.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let axisSet = Set(axes)
        check(axisSet.allSatisfy { $0 >= 0 && $0 < rank }, "sum(alongAxes:): axes \(axes) out of range for shape \(shape)")
        var kept = shape
        for axis in axisSet { kept[axis] = 1 }
        let result = sum(toShape: kept)
        return keepingDimensions ? result : result.reshaped(to: shape.enumerated().filter { !axisSet.contains($0.offset) }.map(\.element))
    }

    /// Returns the sum of all elements as a rank-0 tensor.
    public func sum() -> Tensor { sum(alongAxes: Array(0..<rank)) }

    /// Returns the mean over `axes`.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = Set(axes).reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(n))
    }

    /// Returns the mean of all elements as a rank-0 tensor.
    public func mean() -> Tensor { mean(alongAxes: Array(0..<rank)) }

    /// Returns the sum of this tensor reduced to `target`, a shape it broadcasts from.
    ///
    /// This is the one place where a gradient flowing into a broadcast input is summed back to
    /// that input's shape.
    public func sum(toShape target: [Int]) -> Tensor {
        if target == shape { return self }
        let padded = [Int](repeating: 1, count: rank - target.count) + target
        check(padded.count == rank && Swift.zip(padded, shape).allSatisfy { $0 == $1 || $0 == 1 },
                     "sum(toShape:): \(shape) does not broadcast from \(target)")
        let result = Tensor(shape: target, repeating: 0)
        guard count > 0 else { return result }
        let x = base, y = result.base
        let outStrides = broadcastStrides(padded, to: shape)
        // Fast path: only leading axes are reduced (a bias gradient): add whole rows.
        let inner = padded.count - (padded.firstIndex { $0 != 1 } ?? padded.count)
        let innerCount = padded.suffix(inner).reduce(1, *)
        if padded.suffix(inner) == shape.suffix(inner) {
            let rows = count / Swift.max(innerCount, 1)
            for r in 0..<rows {
                let row = x + r * innerCount
                for i in 0..<innerCount { y[i] += row[i] }
            }
            return result
        }
        let inStrides = Tensor.strides(of: shape)
        let innerLength = shape.last ?? 1, innerOut = outStrides.last ?? 0
        forEachRow(shape: shape, stridesA: inStrides, stridesB: outStrides) { source, target, _ in
            if innerOut == 0 {
                var total: Float = 0
                for i in 0..<innerLength { total += x[source + i] }
                y[target] += total
            } else {
                for i in 0..<innerLength { y[target + i] += x[source + i] }
            }
        }
        return result
    }

    /// Splits the shape around `axis` into (outer, length, inner) counts.
    func split(around axis: Int, op: String) -> (outer: Int, length: Int, inner: Int) {
        check(axis >= 0 && axis < rank, "\(op): axis \(axis) out of range for shape \(shape)")
        return (shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
    }

    /// Returns the maximum along `axis` (the axis is dropped).
    public func max(alongAxis axis: Int) -> Tensor { extreme(alongAxis: axis, op: "max(alongAxis:)", Swift.max) }

    /// Returns the minimum along `axis` (the axis is dropped).
    public func min(alongAxis axis: Int) -> Tensor { extreme(alongAxis: axis, op: "min(alongAxis:)", Swift.min) }

    /// Folds `pick` over `axis` (the axis is dropped): the shared loop of ``max(alongAxis:)`` and ``min(alongAxis:)``.
    private func extreme(alongAxis axis: Int, op: String, _ pick: (Float, Float) -> Float) -> Tensor {
        let (outer, length, inner) = split(around: axis, op: op)
        check(length > 0, "\(op): axis \(axis) of shape \(shape) is empty")
        var outShape = shape
        outShape.remove(at: axis)
        let result = Tensor(uninitializedShape: outShape)
        let x = base, y = result.base
        for o in 0..<outer {
            for i in 0..<inner {
                var best = x[o * length * inner + i]
                for k in 1..<Swift.max(length, 1) { best = pick(best, x[(o * length + k) * inner + i]) }
                y[o * inner + i] = best
            }
        }
        return result
    }

    /// Returns each column's mean and population variance `mean((x − mean)²)` for a matrix `[rows, columns]`,
    /// accumulated in `Double` over two passes (a second pass over deviations avoids the cancellation of
    /// `E[x²] − E[x]²` for large values).
    public func columnMeansAndVariances() -> (means: [Double], variances: [Double]) {
        check(rank == 2 && shape[0] > 0, "columnMeansAndVariances: needs a matrix with rows, got \(shape)")
        let (rows, columns) = (shape[0], shape[1])
        let x = base
        var sums = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            for column in 0..<columns { sums[column] += Double(x[row * columns + column]) }
        }
        let means = sums.map { $0 / Double(rows) }
        var squares = [Double](repeating: 0, count: columns)
        for row in 0..<rows {
            for column in 0..<columns {
                let deviation = Double(x[row * columns + column]) - means[column]
                squares[column] += deviation * deviation
            }
        }
        return (means, squares.map { $0 / Double(rows) })
    }

    /// Returns the index of the maximum along `axis`, for inference (the axis is dropped).
    public func argmax(alongAxis axis: Int) -> [Int] {
        let (outer, length, inner) = split(around: axis, op: "argmax(alongAxis:)")
        check(length > 0, "argmax(alongAxis:): axis \(axis) of shape \(shape) is empty")
        let x = base
        var result = [Int](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for k in 1..<Swift.max(length, 1) where x[(o * length + k) * inner + i] > x[(o * length + best) * inner + i] { best = k }
                result[o * inner + i] = best
            }
        }
        return result
    }

    /// Returns the log-softmax along `axis`, computed stably as `x - max - log(sum(exp(x - max)))`.
    public func logSoftmax(alongAxis axis: Int) -> Tensor {
        softmaxKernel(axis: axis, log: true)
    }

    /// Returns the softmax along `axis`, computed stably by subtracting the maximum first.
    public func softmax(alongAxis axis: Int) -> Tensor {
        softmaxKernel(axis: axis, log: false)
    }

    private func softmaxKernel(axis: Int, log takeLog: Bool) -> Tensor {
        let (outer, length, inner) = split(around: axis, op: takeLog ? "logSoftmax" : "softmax")
        let result = Tensor(uninitializedShape: shape)
        let x = base, y = result.base
        for o in 0..<outer {
            for i in 0..<inner {
                let start = o * length * inner + i
                var largest = -Float.infinity
                for k in 0..<length { largest = Swift.max(largest, x[start + k * inner]) }
                var total: Float = 0
                for k in 0..<length {
                    let e = Foundation.exp(x[start + k * inner] - largest)
                    y[start + k * inner] = e
                    total += e
                }
                if takeLog {
                    let shift = largest + Foundation.log(total)
                    for k in 0..<length { y[start + k * inner] = x[start + k * inner] - shift }
                } else {
                    let scale = 1 / total
                    for k in 0..<length { y[start + k * inner] *= scale }
                }
            }
        }
        return result
    }
}
