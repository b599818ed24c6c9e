import Graph

/// A building block of a model: a function of one node with an explicit, ordered parameter list.
///
/// The order of ``parameters`` is fixed: it feeds `summary()`, optimizers and weight files.
public protocol Layer: AnyObject {
    /// The layer's parameters, trainable and not, in a fixed order.
    var parameters: [Parameter] { get }
    /// Returns the output shape (without the batch axis) for an input shape (without the batch axis),
    /// or throws ``ShapeError`` when the layer cannot take that input.
    func outputShape(forInputShape shape: [Int]) throws -> [Int]
    /// Creates the parameters for an input shape (without the batch axis) if they do not exist yet.
    func build(inputShape: [Int]) throws
    /// Returns the layer's output for a batch (`[batch, ...]`), recording onto the input's tape if it has one.
    func callAsFunction(_ input: Node) -> Node
}

/// A layer cannot take the input shape it was given.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    /// The layer's name.
    public let layer: String
    /// What was expected and what arrived.
    public let message: String

    /// Creates a shape error.
    public init(layer: String, message: String) {
        self.layer = layer
        self.message = message
    }

    /// A sentence naming the layer and the problem.
    public var description: String { "\(layer): \(message)" }
}
