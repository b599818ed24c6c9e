/// Outside data that cannot make a tensor; thrown by ``Tensor/init(validatingShape:scalars:)``.
public enum TensorError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The shape has a negative dimension.
    case negativeDimension(shape: [Int])
    /// The shape's element count does not fit in an `Int`.
    case countOverflow(shape: [Int])
    /// The number of scalars is not the product of the shape.
    case countMismatch(shape: [Int], expected: Int, actual: Int)

    /// A sentence naming the shape and the problem.
    public var description: String {
        switch self {
        case .negativeDimension(let shape): "tensor shape \(shape) has a negative dimension"
        case .countOverflow(let shape): "tensor shape \(shape) has more elements than memory can address"
        case .countMismatch(let shape, let expected, let actual):
            "tensor shape \(shape) needs \(expected) scalars, got \(actual)"
        }
    }
}
