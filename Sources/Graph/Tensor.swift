/// An n-dimensional array of `Float` with value semantics.
///
/// Storage is contiguous and row-major. Copies share their buffer until one of them is written to
/// (copy on write). A tensor knows nothing about gradients: recording operations for
/// differentiation is the job of ``Tape`` and ``Node``.
///
/// Shapes are written `[batch, time, features]`; a scalar has shape `[]`.
public struct Tensor: Sendable {
    /// The size of each dimension, outermost first.
    public let shape: [Int]
    /// The number of elements: the product of `shape`.
    public let count: Int
    var storage: TensorStorage
    /// The position of the first element in `storage` (nonzero for views made by slicing axis 0).
    var offset: Int

    /// Creates a tensor of the given shape whose elements are not initialized.
    init(uninitializedShape shape: [Int]) {
        check(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = TensorStorage(count: count)
        self.offset = 0
    }

    init(shape: [Int], storage: TensorStorage, offset: Int) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.storage = storage
        self.offset = offset
    }

    /// Creates a tensor viewing `count(shape)` floats at `pointer`, owned elsewhere (a plan's arena).
    init(borrowing pointer: UnsafeMutablePointer<Float>, shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(borrowing: pointer, count: shape.reduce(1, *)), offset: 0)
    }

    /// Creates a tensor of the given shape from row-major scalars.
    ///
    /// Traps when `scalars.count` is not the product of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        self.init(uninitializedShape: shape)
        check(scalars.count == count,
                     "Tensor(shape:scalars:): shape \(shape) needs \(count) scalars, got \(scalars.count)")
        scalars.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { storage.pointer.update(from: base, count: count) }
        }
    }

    /// Creates a tensor from outside data (a file, a user's array), checking the shape and the count first.
    ///
    /// - Throws: ``TensorError`` for a negative dimension, a shape whose element count overflows, or
    ///   `scalars.count` differing from the product of `shape`.
    public init(validatingShape shape: [Int], scalars: [Float]) throws(TensorError) {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .negativeDimension(shape: shape) }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .countOverflow(shape: shape) }
            count = product
        }
        guard scalars.count == count else { throw .countMismatch(shape: shape, expected: count, actual: scalars.count) }
        self.init(shape: shape, scalars: scalars)
    }

    /// Creates a tensor of the given shape with every element equal to `value`.
    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    /// Creates a rank-1 tensor from scalars.
    public init(_ scalars: [Float]) {
        self.init(shape: [scalars.count], scalars: scalars)
    }

    /// Creates a rank-2 tensor from rows of equal length.
    public init(_ rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        check(rows.allSatisfy { $0.count == columns }, "Tensor(rows): rows have different lengths")
        self.init(shape: [rows.count, columns], scalars: rows.flatMap { $0 })
    }

    /// Creates a rank-0 tensor holding one scalar.
    public init(scalar: Float) {
        self.init(shape: [], scalars: [scalar])
    }

    /// Returns a tensor of zeros.
    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }

    /// Returns a tensor of ones.
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }

    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// The elements in row-major order.
    public var scalars: [Float] {
        withUnsafeBufferPointer { Array($0) }
    }

    /// The only element of a tensor that holds exactly one.
    public var scalar: Float {
        check(count == 1, "Tensor.scalar: tensor of shape \(shape) holds \(count) elements")
        return storage.pointer[offset]
    }

    /// Accesses the element at a multi-dimensional index.
    public subscript(_ indices: Int...) -> Float {
        get { storage.pointer[offset + flatIndex(indices)] }
        set {
            let index = flatIndex(indices)
            withUnsafeMutableBufferPointer { $0[index] = newValue }
        }
    }

    private func flatIndex(_ indices: [Int]) -> Int {
        check(indices.count == rank, "Tensor subscript: \(indices.count) indices for shape \(shape)")
        var flat = 0
        for (axis, index) in indices.enumerated() {
            check(index >= 0 && index < shape[axis], "Tensor subscript: index \(indices) out of shape \(shape)")
            flat = flat * shape[axis] + index
        }
        return flat
    }

    /// Calls `body` with the elements in row-major order.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Calls `body` with mutable access to the elements, copying the buffer first if it is shared.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            let fresh = TensorStorage(count: count)
            fresh.pointer.update(from: storage.pointer + offset, count: count)
            storage = fresh
            offset = 0
        }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// The first element's address, for kernels that only read.
    var base: UnsafeMutablePointer<Float> { storage.pointer + offset }

    /// Whether this tensor is the only owner of its buffer, so kernels may write into it in place.
    mutating func isUniquelyOwned() -> Bool { isKnownUniquelyReferenced(&storage) }
}

extension Tensor: CustomStringConvertible {
    /// A readable rendering: the shape, then the values (abbreviated past 64 elements).
    public var description: String {
        let values = scalars
        let shown = values.prefix(64).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(values.count > 64 ? ", ..." : "")])"
    }
}

extension Tensor: Equatable {
    /// Two tensors are equal when their shapes and all their elements are equal.
    public static func == (lhs: Tensor, rhs: Tensor) -> Bool {
        lhs.shape == rhs.shape && lhs.withUnsafeBufferPointer { a in rhs.withUnsafeBufferPointer { b in a.elementsEqual(b) } }
    }
}
