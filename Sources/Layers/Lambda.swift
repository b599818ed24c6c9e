import Graph

/// A layer made of a closure over graph nodes, for experiments (Keras' `Lambda`): any composition of
/// node operations, with backpropagation from the tape. It has no parameters.
public final class Lambda: Layer {
    /// The name printed in summaries (`"Lambda"` by default).
    public let typeName: String
    private let function: (Node) -> Node
    private let shapeFunction: ([Int]) -> [Int]

    /// Creates a layer from a function of a batch node; `outputShape` maps the input shape (without the
    /// batch axis) to the output's, and defaults to the identity.
    public init(name: String = "Lambda", outputShape: @escaping ([Int]) -> [Int] = { $0 },
                _ function: @escaping (Node) -> Node) {
        self.typeName = name
        self.function = function
        self.shapeFunction = outputShape
    }

    /// None.
    public var parameters: [Parameter] { [] }
    /// The shape given by `outputShape`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shapeFunction(shape) }
    /// Nothing to build.
    public func build(inputShape: [Int]) throws {}
    /// Returns the function's value, checking that its shape is the declared one.
    public func callAsFunction(_ input: Node) -> Node {
        let output = function(input)
        let expected = shapeFunction(Array(input.shape.dropFirst()))
        check(Array(output.shape.dropFirst()) == expected,
              "\(typeName): the function returned \(output.shape.dropFirst()) per sample, its outputShape says \(expected)")
        return output
    }
}
