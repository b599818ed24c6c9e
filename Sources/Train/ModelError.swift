import Layers

/// A functional model whose wiring cannot work, found by `Model(inputs:outputs:)` before any training.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    /// A model needs at least one input and one output.
    case empty(what: String)
    /// A tensor passed as an input was not made by `Input(shape:)`.
    case notAnInput(tensor: String)
    /// A layer cannot take the tensors it was called on (names the layer, each input's producer and shape).
    case incompatibleLayers(layer: String, inputs: [String], reason: String)
    /// A layer was created with a setting it cannot run with.
    case invalidSetting(layer: String, setting: String, value: String, requirement: String)
    /// A model input that none of the outputs depends on.
    case disconnectedInput(input: String, shape: [Int])
    /// An output depends on an `Input` that is not among the model's inputs (Keras' "graph disconnected").
    case missingInput(input: String, shape: [Int], neededBy: String)
    /// A tensor depends on itself.
    case cycle(layer: String)

    /// A sentence naming the layers and shapes involved.
    public var description: String {
        switch self {
        case .empty(let what): return "a model needs at least one \(what)"
        case .notAnInput(let tensor):
            return "\(tensor) is listed as a model input but was not made by Input(shape:)"
        case .incompatibleLayers(let layer, let inputs, let reason):
            return "\(layer) cannot take \(inputs.joined(separator: ", ")): \(reason)"
        case .invalidSetting(let layer, let setting, let value, let requirement):
            return "\(layer): \(setting) = \(value) is invalid: it \(requirement)"
        case .disconnectedInput(let input, let shape):
            return "the input \(input) \(Sequential.format(shape)) is not connected to any output"
        case .missingInput(let input, let shape, let neededBy):
            return "\(neededBy) needs the input \(input) \(Sequential.format(shape)), which is not among the model's inputs"
        case .cycle(let layer): return "the graph has a cycle through \(layer)"
        }
    }
}
