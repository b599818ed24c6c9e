extension Tensor {
    /// Returns the same elements with a new shape of equal element count (no copy).
    ///
    /// One dimension may be `-1`; it is inferred from the others.
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.map(\.element).reduce(1, *)
            check(known > 0 && count % known == 0, "reshaped(to:): cannot reshape \(shape) to \(newShape)")
            resolved[hole] = count / known
        }
        check(resolved.reduce(1, *) == count, "reshaped(to:): cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: resolved, storage: storage, offset: offset)
    }

    /// Returns the transpose of a rank-2 tensor.
    public func transposed() -> Tensor {
        check(rank == 2, "transposed(): needs rank 2, got shape \(shape)")
        return transposed(permutation: [1, 0])
    }

    /// Returns the tensor with its axes reordered: axis `i` of the result is axis `permutation[i]` of `self`.
    public func transposed(permutation: [Int]) -> Tensor {
        check(permutation.sorted() == Array(0..<rank),
                     "transposed(permutation:): \(permutation) is not a permutation of the axes of \(shape)")
        let outShape = permutation.map { shape[$0] }
        let result = Tensor(uninitializedShape: outShape)
        guard count > 0 else { return result }
        let inStrides = Tensor.strides(of: shape)
        let sourceStrides = permutation.map { inStrides[$0] }
        let x = base, y = result.base
        let inner = outShape.last ?? 1, innerStride = sourceStrides.last ?? 1
        forEachRow(shape: outShape, stridesA: sourceStrides, stridesB: sourceStrides) { source, _, target in
            for i in 0..<inner { y[target + i] = x[source + i * innerStride] }
        }
        return result
    }

    /// Returns the elements whose index along `axis` lies in `range`.
    ///
    /// Slicing axis 0 shares the buffer (no copy); other axes copy.
    public func slice(along axis: Int, _ range: Range<Int>) -> Tensor {
        check(axis >= 0 && axis < rank, "slice(along:): axis \(axis) out of range for shape \(shape)")
        check(range.lowerBound >= 0 && range.upperBound <= shape[axis],
                     "slice(along:): range \(range) out of bounds for axis \(axis) of shape \(shape)")
        var outShape = shape
        outShape[axis] = range.count
        let inner = shape[(axis + 1)...].reduce(1, *)
        if axis == 0 {
            return Tensor(shape: outShape, storage: storage, offset: offset + range.lowerBound * inner)
        }
        let result = Tensor(uninitializedShape: outShape)
        let outer = shape[..<axis].reduce(1, *)
        let rowIn = shape[axis] * inner, rowOut = range.count * inner
        let x = base + range.lowerBound * inner, y = result.base
        for o in 0..<outer { (y + o * rowOut).update(from: x + o * rowIn, count: rowOut) }
        return result
    }

    /// Returns the tensors joined along `axis`; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], along axis: Int) -> Tensor {
        check(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0].shape
        check(axis >= 0 && axis < first.count, "concatenate: axis \(axis) out of range for shape \(first)")
        for tensor in tensors {
            var a = tensor.shape, b = first
            check(a.count == b.count, "concatenate: shapes \(first) and \(tensor.shape) differ in rank")
            a[axis] = 0; b[axis] = 0
            check(a == b, "concatenate: shapes \(first) and \(tensor.shape) differ off axis \(axis)")
        }
        var outShape = first
        outShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let result = Tensor(uninitializedShape: outShape)
        let outer = first[..<axis].reduce(1, *), inner = first[(axis + 1)...].reduce(1, *)
        let rowOut = outShape[axis] * inner
        var column = 0
        for tensor in tensors {
            let width = tensor.shape[axis] * inner
            let x = tensor.base, y = result.base + column
            for o in 0..<outer { (y + o * rowOut).update(from: x + o * width, count: width) }
            column += width
        }
        return result
    }

    /// Row-major strides of a shape.
    static func strides(of shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }
}
