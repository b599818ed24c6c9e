import Graph

/// A weight file or dictionary does not fit a layer.
public enum WeightError: Error, CustomStringConvertible, Equatable {
    /// A tensor the layer needs is absent.
    case missing(name: String)
    /// A tensor has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], actual: [Int])
    /// The layer has not been built, so its shapes are unknown.
    case notBuilt(layer: String)
    /// A list of weights holds a different number of tensors than the model has parameters.
    case countMismatch(expected: Int, actual: Int)

    /// A sentence naming the tensor and the problem.
    public var description: String {
        switch self {
        case .missing(let name): "weights: no tensor named '\(name)'"
        case .shapeMismatch(let name, let expected, let actual):
            "weights: '\(name)' has shape \(actual), expected \(expected)"
        case .notBuilt(let layer): "weights: \(layer) is not built yet (give it an input shape first)"
        case .countMismatch(let expected, let actual): "weights: \(actual) tensors given, the model has \(expected) parameters"
        }
    }
}

/// How a fused Keras bias maps to PyTorch's two biases.
public enum BiasSplit: Sendable {
    /// `bias_ih = bias`, `bias_hh = 0`: the same forward pass (use for weights).
    case inputOnly
    /// `bias_ih = bias_hh = bias`: the gradient of each PyTorch bias (use for gradients).
    case duplicated
}

/// A recurrent cell whose parameters convert to and from PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` layout.
///
/// PyTorch stores `weight_ih [gates·hidden, input]`, `weight_hh [gates·hidden, hidden]` and two biases,
/// gates stacked in its own order (LSTM i, f, g, o; GRU r, z, n). Unroll uses Keras' layout: transposed
/// kernels, one bias (or GRU's `[2, 3·hidden]`), Keras' gate order (LSTM i, f, c, o; GRU z, r, h).
public protocol PyTorchConvertible: RecurrentCell {
    /// Returns PyTorch tensors (unsuffixed names: `weight_ih`, ...) from values given in ``RecurrentCell/parameters`` order.
    func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor]
    /// Returns values in ``RecurrentCell/parameters`` order from PyTorch tensors.
    func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor]
}

extension PyTorchConvertible {
    /// Sets the parameters from PyTorch tensors whose names end in `suffix` (`"_l0"`, `"_l0_reverse"`).
    public func loadPyTorch(_ tensors: [String: Tensor], suffix: String = "") throws {
        var unsuffixed: [String: Tensor] = [:]
        for (name, tensor) in tensors where name.hasSuffix(suffix) {
            unsuffixed[String(name.dropLast(suffix.count))] = tensor
        }
        let values = try values(fromPyTorch: unsuffixed)
        guard values.count == parameters.count else { throw WeightError.notBuilt(layer: typeName) }
        for (parameter, value) in zip(parameters, values) {
            guard parameter.shape == value.shape else {
                throw WeightError.shapeMismatch(name: parameter.name, expected: parameter.shape, actual: value.shape)
            }
            parameter.value = value
        }
    }

    /// Returns the parameters in PyTorch's layout, names ending in `suffix`.
    public func pyTorchStateDict(suffix: String = "") -> [String: Tensor] {
        suffixed(pyTorchTensors(from: parameters.map(\.value), biasSplit: .inputOnly), suffix)
    }

    /// Returns the parameters' gradients in PyTorch's layout (zeros where none), names ending in `suffix`.
    public func pyTorchGradients(suffix: String = "") -> [String: Tensor] {
        suffixed(pyTorchTensors(from: parameters.map { $0.gradient ?? Tensor.zeros($0.shape) }, biasSplit: .duplicated), suffix)
    }

    private func suffixed(_ tensors: [String: Tensor], _ suffix: String) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: tensors.map { ($0.key + suffix, $0.value) })
    }
}

/// Gate-block reordering and transposition between the two layouts.
enum GateLayout {
    /// Returns `[gates·n, ...]` with row block `k` taken from block `order[k]` of `tensor`.
    static func reorderBlocks(_ tensor: Tensor, order: [Int]) -> Tensor {
        if order == Array(0..<order.count) { return tensor }
        let size = tensor.shape[0] / order.count
        return Tensor.concatenate(order.map { tensor.slice(along: 0, ($0 * size)..<(($0 + 1) * size)) }, along: 0)
    }

    /// PyTorch `[gates·n, m]` (PyTorch gate order) to Keras `[m, gates·n]` (Keras gate order).
    static func kernel(fromPyTorch weight: Tensor, order: [Int]) -> Tensor {
        reorderBlocks(weight, order: order).transposed()
    }

    /// Keras `[m, gates·n]` to PyTorch `[gates·n, m]`; `order` is its own inverse for every cell here.
    static func pyTorchWeight(fromKernel kernel: Tensor, order: [Int]) -> Tensor {
        reorderBlocks(kernel.transposed(), order: order)
    }

    static func require(_ tensors: [String: Tensor], _ name: String, _ shape: [Int]? = nil) throws -> Tensor {
        guard let tensor = tensors[name] else { throw WeightError.missing(name: name) }
        if let shape, tensor.shape != shape {
            throw WeightError.shapeMismatch(name: name, expected: shape, actual: tensor.shape)
        }
        return tensor
    }
}

/// The shared conversion of cells with `kernel`, `recurrent_kernel` and a bias summed from PyTorch's two.
private func fusedValues(_ tensors: [String: Tensor], gates: Int, hidden: Int, order: [Int]) throws -> [Tensor] {
    let weightIH = try GateLayout.require(tensors, "weight_ih")
    guard weightIH.rank == 2, weightIH.shape[0] == gates * hidden else {
        throw WeightError.shapeMismatch(name: "weight_ih", expected: [gates * hidden, weightIH.shape.last ?? 0], actual: weightIH.shape)
    }
    let weightHH = try GateLayout.require(tensors, "weight_hh", [gates * hidden, hidden])
    let biasIH = try GateLayout.require(tensors, "bias_ih", [gates * hidden])
    let biasHH = try GateLayout.require(tensors, "bias_hh", [gates * hidden])
    return [GateLayout.kernel(fromPyTorch: weightIH, order: order),
            GateLayout.kernel(fromPyTorch: weightHH, order: order),
            GateLayout.reorderBlocks(biasIH + biasHH, order: order)]
}

private func fusedPyTorch(_ values: [Tensor], order: [Int], biasSplit: BiasSplit) -> [String: Tensor] {
    let bias = GateLayout.reorderBlocks(values[2], order: order)
    return ["weight_ih": GateLayout.pyTorchWeight(fromKernel: values[0], order: order),
            "weight_hh": GateLayout.pyTorchWeight(fromKernel: values[1], order: order),
            "bias_ih": bias,
            "bias_hh": biasSplit == .duplicated ? bias : Tensor.zeros(bias.shape)]
}

extension SimpleRNNCell: PyTorchConvertible {
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`.
    public func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor] {
        fusedPyTorch(values, order: [0], biasSplit: biasSplit)
    }
    /// kernel, recurrent kernel, summed bias.
    public func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor] {
        try fusedValues(tensors, gates: 1, hidden: hiddenSize, order: [0])
    }
}

extension LSTMCell: PyTorchConvertible {
    /// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh` (gate order i, f, g, o: the same as Keras').
    public func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor] {
        fusedPyTorch(values, order: [0, 1, 2, 3], biasSplit: biasSplit)
    }
    /// kernel, recurrent kernel, summed bias.
    public func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor] {
        try fusedValues(tensors, gates: 4, hidden: hiddenSize, order: [0, 1, 2, 3])
    }
}

extension PeepholeLSTMCell: PyTorchConvertible {
    /// The LSTM tensors plus `peephole_i`, `peephole_f`, `peephole_o`.
    public func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor] {
        var result = fusedPyTorch(values, order: [0, 1, 2, 3], biasSplit: biasSplit)
        result["peephole_i"] = values[3]
        result["peephole_f"] = values[4]
        result["peephole_o"] = values[5]
        return result
    }
    /// kernel, recurrent kernel, summed bias, peepholes i, f, o.
    public func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor] {
        try fusedValues(tensors, gates: 4, hidden: hiddenSize, order: [0, 1, 2, 3])
            + ["peephole_i", "peephole_f", "peephole_o"].map { try GateLayout.require(tensors, $0, [hiddenSize]) }
    }
}

extension GRUCell: PyTorchConvertible {
    /// PyTorch's gate order r, z, n against Keras' z, r, h: swap the first two blocks.
    static let gateOrder = [1, 0, 2]

    /// `weight_ih`, `weight_hh`, and `bias_ih` + `bias_hh` (reset after) or `bias` (reset before).
    public func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor] {
        let order = GRUCell.gateOrder
        var result = ["weight_ih": GateLayout.pyTorchWeight(fromKernel: values[0], order: order),
                      "weight_hh": GateLayout.pyTorchWeight(fromKernel: values[1], order: order)]
        if resetAfter {
            let width = 3 * hiddenSize
            result["bias_ih"] = GateLayout.reorderBlocks(values[2].slice(along: 0, 0..<1).reshaped(to: [width]), order: order)
            result["bias_hh"] = GateLayout.reorderBlocks(values[2].slice(along: 0, 1..<2).reshaped(to: [width]), order: order)
        } else {
            result["bias"] = GateLayout.reorderBlocks(values[2], order: order)
        }
        return result
    }

    /// kernel, recurrent kernel, and the `[2, 3·hidden]` (or `[3·hidden]`) bias.
    public func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor] {
        let order = GRUCell.gateOrder, width = 3 * hiddenSize
        let weightIH = try GateLayout.require(tensors, "weight_ih")
        guard weightIH.rank == 2, weightIH.shape[0] == width else {
            throw WeightError.shapeMismatch(name: "weight_ih", expected: [width, weightIH.shape.last ?? 0], actual: weightIH.shape)
        }
        let weightHH = try GateLayout.require(tensors, "weight_hh", [width, hiddenSize])
        let bias: Tensor
        if resetAfter {
            let rows = try ["bias_ih", "bias_hh"].map {
                GateLayout.reorderBlocks(try GateLayout.require(tensors, $0, [width]), order: order).reshaped(to: [1, width])
            }
            bias = Tensor.concatenate(rows, along: 0)
        } else {
            bias = GateLayout.reorderBlocks(try GateLayout.require(tensors, "bias", [width]), order: order)
        }
        return [GateLayout.kernel(fromPyTorch: weightIH, order: order),
                GateLayout.kernel(fromPyTorch: weightHH, order: order), bias]
    }
}

extension IndRNNCell: PyTorchConvertible {
    /// `weight_ih`, `recurrent_weight`, `bias`.
    public func pyTorchTensors(from values: [Tensor], biasSplit: BiasSplit) -> [String: Tensor] {
        ["weight_ih": values[0].transposed(), "recurrent_weight": values[1], "bias": values[2]]
    }
    /// kernel, recurrent weight, bias.
    public func values(fromPyTorch tensors: [String: Tensor]) throws -> [Tensor] {
        let weightIH = try GateLayout.require(tensors, "weight_ih")
        guard weightIH.rank == 2, weightIH.shape[0] == hiddenSize else {
            throw WeightError.shapeMismatch(name: "weight_ih", expected: [hiddenSize, weightIH.shape.last ?? 0], actual: weightIH.shape)
        }
        return [weightIH.transposed(), try GateLayout.require(tensors, "recurrent_weight", [hiddenSize]),
                try GateLayout.require(tensors, "bias", [hiddenSize])]
    }
}

extension RNN where Cell: PyTorchConvertible {
    /// Sets the weights from a PyTorch state dict, layer `index` (`_l0`), the `_reverse` direction if asked.
    public func loadPyTorch(_ stateDict: [String: Tensor], layerIndex: Int = 0, reverse: Bool = false) throws {
        try cell.loadPyTorch(stateDict, suffix: "_l\(layerIndex)" + (reverse ? "_reverse" : ""))
    }

    /// Returns the weights as PyTorch state-dict entries for layer `index`.
    public func pyTorchStateDict(layerIndex: Int = 0, reverse: Bool = false) -> [String: Tensor] {
        cell.pyTorchStateDict(suffix: "_l\(layerIndex)" + (reverse ? "_reverse" : ""))
    }
}

extension Bidirectional where Cell: PyTorchConvertible {
    /// Sets both directions from a PyTorch state dict (`_l{index}` and `_l{index}_reverse`).
    public func loadPyTorch(_ stateDict: [String: Tensor], layerIndex: Int = 0) throws {
        try forward.loadPyTorch(stateDict, layerIndex: layerIndex)
        try backward.loadPyTorch(stateDict, layerIndex: layerIndex, reverse: true)
    }

    /// Returns both directions as PyTorch state-dict entries.
    public func pyTorchStateDict(layerIndex: Int = 0) -> [String: Tensor] {
        forward.pyTorchStateDict(layerIndex: layerIndex)
            .merging(backward.pyTorchStateDict(layerIndex: layerIndex, reverse: true)) { a, _ in a }
    }
}
