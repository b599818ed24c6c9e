// Tensor operations that pick elements out of a tensor (no arithmetic): entries by index, sliding windows,
// one-hot rows, and a scan for non-finite values. Data preparation (Datasets) and batching (Train) use them,
// so that pointer loops stay here.

extension Tensor {
    /// Returns the entries of `axis` at `indices`, in that order (an index may repeat): for a matrix and
    /// axis 0, the rows `indices`; for axis 1, its columns.
    public func gathering(_ indices: [Int], along axis: Int) -> Tensor {
        let (outer, length, inner) = split(around: axis, op: "gathering(_:along:)")
        for index in indices {
            check(index >= 0 && index < length, "gathering: index \(index) out of range 0..<\(length) for axis \(axis) of \(shape)")
        }
        var outShape = shape
        outShape[axis] = indices.count
        let result = Tensor(uninitializedShape: outShape)
        let x = base, y = result.base
        for o in 0..<outer {
            for (k, index) in indices.enumerated() {
                (y + (o * indices.count + k) * inner).update(from: x + (o * length + index) * inner, count: inner)
            }
        }
        return result
    }

    /// Returns the windows of `length` consecutive entries of axis 0, starting every `stride` entries:
    /// `[n, rest...]` → `[count, length, rest...]` with `count = (n − length) / stride + 1`.
    public func windows(length: Int, stride: Int) -> Tensor {
        check(rank >= 1 && length >= 1 && stride >= 1 && length <= shape[0],
              "windows: length \(length) and stride \(stride) do not fit axis 0 of \(shape)")
        let count = (shape[0] - length) / stride + 1
        let inner = shape.dropFirst().reduce(1, *), size = length * inner
        let result = Tensor(uninitializedShape: [count, length] + shape.dropFirst())
        let x = base, y = result.base
        for window in 0..<count { (y + window * size).update(from: x + window * stride * inner, count: size) }
        return result
    }

    /// Returns one-hot rows for the class indices this tensor holds: `[n...]` → `[n..., classes]`, a 1 at
    /// each index (rounded toward zero); an index outside `0..<classes`, or NaN, gives a row of zeros.
    public func oneHot(classes: Int) -> Tensor {
        let result = Tensor(shape: shape + [classes], repeating: 0)
        let x = base, y = result.base
        for row in 0..<count {
            let value = x[row].rounded(.towardZero)
            if value >= 0, value < Float(classes) { y[row * classes + Int(value)] = 1 }
        }
        return result
    }

    /// The flat index of the first NaN or infinity, or `nil` when every element is finite.
    ///
    /// Training checks every gradient with this at each step, so it first scans eight lanes at a time for
    /// whether any element is not finite (`x · 0` is 0 for a finite `x`, NaN otherwise, and a sum keeps the
    /// NaN), and searches element by element only when one is.
    public var firstNonFiniteIndex: Int? {
        let x = base, raw = UnsafeRawPointer(base), vectorEnd = count & ~7
        var lanes = SIMD8<Float>()
        for start in stride(from: 0, to: vectorEnd, by: 8) {
            lanes += raw.loadUnaligned(fromByteOffset: start * MemoryLayout<Float>.stride, as: SIMD8<Float>.self) * 0
        }
        if lanes.sum().isFinite, (vectorEnd..<count).allSatisfy({ x[$0].isFinite }) { return nil }
        return (0..<count).first { !x[$0].isFinite }
    }
}
