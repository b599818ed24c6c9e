import Graph

/// A layer that combines several tensors into one (`Concatenate`, `Add`, `Multiply`).
///
/// Called on one node it is the identity, so it is still a ``Layer`` (a name, no parameters,
/// a place in summaries and model files); in a functional model it is called on a list.
public protocol MergeLayer: Layer {
    /// Returns the output shape for the input shapes, or throws ``ShapeError`` when they cannot merge.
    func outputShape(forInputShapes shapes: [[Int]]) throws -> [Int]
    /// Returns the merged batch, recording onto the inputs' tape if they have one.
    func callAsFunction(_ inputs: [Node]) -> Node
}

extension MergeLayer {
    /// No parameters.
    public var parameters: [Parameter] { [] }
    /// One input merges to itself.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { try outputShape(forInputShapes: [shape]) }
    /// Nothing to build.
    public func build(inputShape: [Int]) throws {}
    /// One input merges to itself.
    public func callAsFunction(_ input: Node) -> Node { callAsFunction([input]) }

    /// Calls the layer on symbolic tensors, recording the call in the model graph (Keras' `Add()([a, b])`).
    public func callAsFunction(_ inputs: [SymbolicTensor]) -> SymbolicTensor {
        LayerCall.record(self, inputs: inputs, outputCount: 1, shapes: {
            guard !inputs.isEmpty else { throw ShapeError(layer: typeName, message: "needs at least one input") }
            return [try outputShape(forInputShapes: inputs.map(\.shape))]
        }, function: { [self] nodes, masks in
            let output = self(nodes)
            // A step is real when it is real in every input that has a mask (Keras' merges take the logical and).
            let present = masks.compactMap { $0 }
            let combined = present.dropFirst().reduce(present.first) { product, mask in product.map { $0 * mask } }
            return ([output], [passedOn(combined, to: output)])
        })[0]
    }
}

/// Joins tensors along an axis (the last by default): `[n, 16]` and `[n, 4]` become `[n, 20]`.
public final class Concatenate: MergeLayer {
    /// The axis joined along, counted without the batch axis; negative counts from the end (Keras' `axis=-1`).
    public let axis: Int

    /// Creates a concatenation along `axis` (`-1`: the last).
    public init(axis: Int = -1) { self.axis = axis }

    /// "Concatenate".
    public var typeName: String { "Concatenate" }

    /// The inputs' common shape with the joined axis summed; every other axis must agree.
    public func outputShape(forInputShapes shapes: [[Int]]) throws -> [Int] {
        let rank = shapes[0].count
        let axis = self.axis < 0 ? rank + self.axis : self.axis
        guard axis >= 0 && axis < rank else {
            throw ShapeError(layer: typeName, message: "axis \(self.axis) is outside inputs of rank \(rank) (\(shapes[0]))")
        }
        for shape in shapes where shape.count != rank || shape.enumerated().contains(where: { $0 != axis && $1 != shapes[0][$0] }) {
            throw ShapeError(layer: typeName, message: "inputs must agree on every axis but \(self.axis), got \(shapes)")
        }
        var result = shapes[0]
        result[axis] = shapes.reduce(0) { $0 + $1[axis] }
        return result
    }

    /// Returns the inputs joined along the axis.
    public func callAsFunction(_ inputs: [Node]) -> Node {
        let rank = inputs[0].shape.count
        return concatenate(inputs, along: axis < 0 ? rank + axis : axis + 1)
    }
}

/// Shapes that must be equal for an element-wise merge.
private func commonShape(_ shapes: [[Int]], layer: String) throws -> [Int] {
    guard shapes.allSatisfy({ $0 == shapes[0] }) else {
        throw ShapeError(layer: layer, message: "inputs must have one shape, got \(shapes)")
    }
    return shapes[0]
}

/// Adds tensors of one shape element by element (a residual connection).
public final class Add: MergeLayer {
    /// Creates an addition.
    public init() {}
    /// "Add".
    public var typeName: String { "Add" }
    /// The common shape.
    public func outputShape(forInputShapes shapes: [[Int]]) throws -> [Int] { try commonShape(shapes, layer: typeName) }
    /// Returns the sum.
    public func callAsFunction(_ inputs: [Node]) -> Node { inputs.dropFirst().reduce(inputs[0], +) }
}

/// Multiplies tensors of one shape element by element (a gate).
public final class Multiply: MergeLayer {
    /// Creates a product.
    public init() {}
    /// "Multiply".
    public var typeName: String { "Multiply" }
    /// The common shape.
    public func outputShape(forInputShapes shapes: [[Int]]) throws -> [Int] { try commonShape(shapes, layer: typeName) }
    /// Returns the product.
    public func callAsFunction(_ inputs: [Node]) -> Node { inputs.dropFirst().reduce(inputs[0], *) }
}
