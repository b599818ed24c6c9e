import Graph

/// A building block of a model: a function of one node with an explicit, ordered parameter list.
///
/// The order of ``parameters`` is fixed: it feeds `summary()`, optimizers and weight files.
/// Shapes given to and returned by a layer leave out the batch axis (`[time, features]`).
public protocol Layer: AnyObject {
    /// The layer's kind as Keras prints it in a summary (`"LSTM"`, `"Dense"`).
    var typeName: String { get }
    /// The layer's parameters, trainable and not, in a fixed order (empty until built).
    var parameters: [Parameter] { get }
    /// The input shape given at creation, if any (the first layer of a model needs one).
    var declaredInputShape: [Int]? { get }
    /// Returns the output shape for an input shape, or throws ``ShapeError`` when the layer cannot take it.
    func outputShape(forInputShape shape: [Int]) throws -> [Int]
    /// Creates the parameters for an input shape if they do not exist yet.
    func build(inputShape: [Int]) throws
    /// Returns the layer's output for a batch, recording onto the input's tape if it has one.
    func callAsFunction(_ input: Node) -> Node
    /// Clamps parameters that have a constraint (called by trainers after each update).
    func applyConstraints()
    /// Clears any state carried between batches (stateful recurrent layers).
    func resetStates()
    /// The settings given at creation that the layer cannot run with (empty when all are valid).
    var invalidSettings: [SettingError] { get }
    /// Whether a recorded call can be compiled and replayed on new inputs of the same shape: false when the
    /// recorded graph depends on more than shapes (a carried state, a fresh random mask, indices read from
    /// the input's values), since a compiled plan freezes everything but its inputs and parameters.
    var supportsCompilation: Bool { get }
}

extension Layer {
    /// No input shape unless the layer says so.
    public var declaredInputShape: [Int]? { nil }
    /// No constraints by default.
    public func applyConstraints() {}
    /// No state by default.
    public func resetStates() {}
    /// No settings to check by default.
    public var invalidSettings: [SettingError] { [] }
    /// Compilable by default: a layer built from graph nodes records the same graph for the same shapes.
    public var supportsCompilation: Bool { true }
    /// The number of scalars in trainable parameters.
    public var trainableParameterCount: Int {
        parameters.filter(\.isTrainable).reduce(0) { $0 + $1.value.count }
    }
    /// The number of scalars in non-trainable parameters.
    public var nonTrainableParameterCount: Int {
        parameters.filter { !$0.isTrainable }.reduce(0) { $0 + $1.value.count }
    }
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
