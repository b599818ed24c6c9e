import Foundation
import Graph
import Layers
import Serialization

/// What `Sequential` and the functional `Model` share, and what callbacks see of the model they train.
///
/// Both train through one loop (`FitLoop.swift`): the loop shuffles, batches, reports, validates and
/// calls callbacks; the model only says how one batch is trained and evaluated.
public protocol TrainableModel: AnyObject {
    /// Every layer once, in the model's order.
    var layers: [any Layer] { get }
    /// Keras-style layer names, one per layer in ``layers`` (`lstm`, `lstm_1`).
    var layerNames: [String] { get }
    /// The optimizer set by `compile`.
    var optimizer: (any Optimizer)? { get }
    /// Whether training and inference replay compiled plans (`compile(..., jitCompile:)`, on by default).
    var jitCompile: Bool { get }
    /// Clears the carried state of every stateful layer.
    func resetStates()
    /// Writes every parameter to a safetensors file, named as in ``namedParameters``.
    func saveWeights(to url: URL, metadata: [String: String]) throws
}

extension TrainableModel {
    /// Every parameter once (a shared layer's too), in layer order.
    public var parameters: [Parameter] { layers.flatMap(\.parameters) }

    /// Parameters with unique names (`lstm/kernel`, `bidirectional/kernel_1`), the keys of weight files.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        WeightNames.identities(of: layers, names: layerNames).map { ($0.unrollName, $0.parameter) }
    }

    /// The current values of all parameters, in order.
    public var weights: [Tensor] { parameters.map(\.value) }

    /// Sets all parameters from values in the order of ``weights``, checking the count and every shape first.
    ///
    /// - Throws: ``WeightError/countMismatch(expected:actual:)`` or ``WeightError/shapeMismatch(name:expected:actual:)``
    ///   (naming the parameter as ``namedParameters`` does); no parameter changes when it throws.
    public func setWeights(_ values: [Tensor]) throws {
        let named = namedParameters
        guard values.count == named.count else { throw WeightError.countMismatch(expected: named.count, actual: values.count) }
        for ((name, parameter), value) in zip(named, values) where parameter.shape != value.shape {
            throw WeightError.shapeMismatch(name: name, expected: parameter.shape, actual: value.shape)
        }
        for ((_, parameter), value) in zip(named, values) { parameter.value = value }
    }

    /// Sets every parameter from a dictionary keyed as ``namedParameters``, checking names and shapes first.
    ///
    /// - Throws: ``WeightError/missing(name:)`` or ``WeightError/shapeMismatch(name:expected:actual:)``, naming the
    ///   tensor and `source`; no parameter changes when it throws.
    public func setWeights(named tensors: [String: Tensor], source: String = "weights") throws {
        let named = namedParameters
        for (name, parameter) in named {
            guard let tensor = tensors[name] else {
                throw WeightError.missing(name: "\(name) (in \(source))")
            }
            guard tensor.shape == parameter.shape else {
                throw WeightError.shapeMismatch(name: "\(name) (in \(source))", expected: parameter.shape, actual: tensor.shape)
            }
        }
        for (name, parameter) in named { parameter.value = tensors[name]! }
    }

    /// Updates the weights from their gradients unless a gradient is not finite; clears the gradients.
    func applyGradients(_ optimizer: any Optimizer) -> Bool {
        let parameters = self.parameters
        defer { parameters.forEach { $0.zeroGradient() } }
        let finite = parameters.allSatisfy { parameter in
            parameter.gradient?.firstNonFiniteIndex == nil
        }
        guard finite else { return false }
        optimizer.update(parameters)
        layers.forEach { $0.applyConstraints() }
        return true
    }
}

/// `Sequential` trains through the shared loop.
extension Sequential: TrainableModel {}

/// Checks one input array of a batch: samples, per-sample shape, finite values.
func checkInput(_ x: Tensor, shape: [Int], name: String) throws {
    guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.emptyData(name: name) }
    guard Array(x.shape.dropFirst()) == shape else {
        throw TrainingError.shapeMismatch(name: name, expected: shape, actual: Array(x.shape.dropFirst()))
    }
    if let bad = x.firstNonFiniteIndex {
        throw TrainingError.nonFinite(name: name, index: bad)
    }
}

/// Checks a target array against an output's shape and loss; returns it reshaped to `[n] + outputShape`
/// (without the class axis for sparse targets) when only its layout differs.
func checkedTarget(_ y: Tensor, outputShape: [Int], loss: Loss?, name: String) throws -> Tensor {
    guard y.rank >= 1, y.shape[0] > 0 else { throw TrainingError.emptyData(name: name) }
    if let bad = y.firstNonFiniteIndex {
        throw TrainingError.nonFinite(name: name, index: bad)
    }
    let perSample = Array(y.shape.dropFirst())
    if case .sparseCategoricalCrossEntropy = loss {
        try checkIndices(y, below: outputShape.last ?? 1, name: name)
        let expected = Array(outputShape.dropLast())
        guard isKerasSqueeze(perSample, of: expected) else {
            throw TrainingError.shapeMismatch(name: name, expected: expected, actual: perSample)
        }
        return y.reshaped(to: [y.shape[0]] + expected)
    }
    guard isKerasSqueeze(perSample, of: outputShape) else {
        throw TrainingError.shapeMismatch(name: name, expected: outputShape, actual: perSample)
    }
    return y.reshaped(to: [y.shape[0]] + outputShape)
}

/// Whether a target of per-sample shape `shape` stands for `expected` as Keras accepts it: the same shape, or
/// one with a trailing axis of size 1 added or removed (`[m, 1]` for `[m]`, `[]` for `[1]`). Shapes that only
/// hold the same number of elements (`[3, 2]` for `[2, 3]`) are refused.
func isKerasSqueeze(_ shape: [Int], of expected: [Int]) -> Bool {
    shape == expected || shape == expected + [1] || shape + [1] == expected
}

/// Throws unless every element of `tensor` is a whole number in `0..<count` (class or token indices).
func checkIndices(_ tensor: Tensor, below count: Int, name: String) throws {
    let bad = tensor.scalars.firstIndex { $0 < 0 || $0 >= Float(count) || $0.rounded() != $0 }
    if let bad {
        throw TrainingError.invalidArgument(name: "\(name)[\(bad)]", value: "\(tensor.scalars[bad])",
                                            reason: "must be a whole number in 0..<\(count) (an index)")
    }
}
