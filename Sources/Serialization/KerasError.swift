/// A problem reading or writing a Keras file (`.keras` or `.weights.h5`); every case names the file.
///
/// The containers' own problems arrive as ``ZipError`` or ``HDF5Error``, and a malformed `config.json` as
/// ``invalidConfiguration(file:reason:)`` naming the field path.
public enum KerasError: Error, CustomStringConvertible, Equatable {
    /// `config.json` is not JSON, or a field is missing, of the wrong type or out of range; `reason` names the
    /// field path (`config.layers[2].config.units`).
    case invalidConfiguration(file: String, reason: String)
    /// A layer class Unroll has no counterpart for (`Conv1D`, a custom layer, a functional model).
    case unsupportedLayer(file: String, path: String, className: String)
    /// A layer or optimizer option whose value Unroll cannot honour; `supported` says what it can.
    case unsupportedOption(file: String, path: String, value: String, supported: String)
    /// The weights file lacks a variable the model needs; `path` is its HDF5 path (`layers/lstm/cell/vars/2`).
    case missingWeight(file: String, path: String)
    /// A variable of the weights file has the wrong shape.
    case weightShapeMismatch(file: String, path: String, expected: [Int], actual: [Int])
    /// The weights file holds variables the layer has no place for.
    case unexpectedWeights(file: String, path: String, names: [String])
    /// A model Unroll cannot write as Keras (a layer or cell without a Keras twin).
    case cannotExport(reason: String)

    /// A sentence naming the file, the place and the problem.
    public var description: String {
        switch self {
        case let .invalidConfiguration(file, reason): "\(file): invalid Keras configuration: \(reason)"
        case let .unsupportedLayer(file, path, className):
            "\(file): \(path): the Keras layer \(className) is not supported (supported: InputLayer, LSTM, GRU, "
                + "SimpleRNN, Bidirectional, Dense, Embedding, Dropout in a Sequential model)"
        case let .unsupportedOption(file, path, value, supported):
            "\(file): \(path) = \(value) is not supported (supported: \(supported))"
        case let .missingWeight(file, path): "\(file): no weight variable at '\(path)'"
        case let .weightShapeMismatch(file, path, expected, actual):
            "\(file): '\(path)' has shape \(actual), expected \(expected)"
        case let .unexpectedWeights(file, path, names):
            "\(file): '\(path)' holds variables the layer has no place for: \(names.joined(separator: ", "))"
        case let .cannotExport(reason): "cannot write a Keras file: \(reason)"
        }
    }
}
