import Layers

/// Data or settings given to a model that it cannot use; each case says what was expected and what arrived.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// `fit`, `evaluate` or `predict` was called before `compile`.
    case notCompiled
    /// The model has no layers.
    case noLayers
    /// The first layer has no input shape (give `inputShape:` to it, or to `Sequential`).
    case missingInputShape(layer: String)
    /// A layer was created with a setting it cannot run with (`LSTM(hiddenSize: 0)`).
    case invalidSetting(layer: String, setting: String, value: String, requirement: String)
    /// Two adjacent layers do not fit together.
    case incompatibleLayers(previous: String, next: String, shape: [Int], reason: String)
    /// An array has no samples.
    case emptyData(name: String)
    /// Inputs and targets hold different numbers of samples.
    case sampleCountMismatch(inputs: Int, targets: Int)
    /// An array's per-sample shape is not the one the model takes or produces.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// An array holds NaN or an infinity.
    case nonFinite(name: String, index: Int)
    /// A setting is out of range.
    case invalidArgument(name: String, value: String, reason: String)
    /// A combination of settings the model cannot run.
    case unsupported(String)

    /// A sentence naming the problem.
    public var description: String {
        switch self {
        case .notCompiled: return "the model is not compiled: call compile(loss:optimizer:metrics:) first"
        case .noLayers: return "the model has no layers"
        case .missingInputShape(let layer):
            return "\(layer) is the first layer but has no input shape: pass inputShape: [time, features]"
        case .invalidSetting(let layer, let setting, let value, let requirement):
            return "\(layer): \(setting) = \(value) is invalid: it \(requirement)"
        case .incompatibleLayers(let previous, let next, let shape, let reason):
            return "\(next) cannot follow \(previous) (output shape \(Sequential.format(shape))): \(reason)"
        case .emptyData(let name): return "\(name) is empty"
        case .sampleCountMismatch(let inputs, let targets):
            return "x has \(inputs) samples but y has \(targets)"
        case .shapeMismatch(let name, let expected, let actual):
            return "\(name) has per-sample shape \(actual), expected \(expected)"
        case .nonFinite(let name, let index):
            return "\(name) holds a non-finite value (NaN or infinity) at flat index \(index)"
        case .invalidArgument(let name, let value, let reason):
            return "\(name) = \(value) is invalid: \(reason)"
        case .unsupported(let message): return message
        }
    }
}

/// The record of a training run, like Keras' `History`.
public struct History: Sendable {
    /// Per-epoch values by name: `"loss"`, `"val_loss"`, metric names and `"val_"` + metric names.
    public var values: [String: [Float]] = [:]
    /// The epochs that ran (0-based).
    public var epochs: [Int] = []
    /// Why training stopped before its last epoch, if it did (early stopping, a non-finite loss).
    public var stopReason: String?

    /// The values recorded under `name` (`history["loss"]`).
    public subscript(name: String) -> [Float] { values[name] ?? [] }
}
