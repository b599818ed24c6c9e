import Graph

// The layouts of a cell's or layer's weights in other frameworks, as one table keyed by (kind, part) where a
// part is a parameter's own name. Unroll's layout is Keras' (the identity); PyTorch's differs by transposed
// kernels, its gate order and two biases. Serialization derives every weight name from the same keys
// (`WeightNames.swift`); this file holds only the layouts, which also serve cells used without a model.

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
package enum BiasSplit: Sendable {
    /// `bias_ih = bias`, `bias_hh = 0`: the same forward pass (use for weights).
    case inputOnly
    /// `bias_ih = bias_hh = bias`: the gradient of each PyTorch bias (use for gradients).
    case duplicated
}

/// A parameter as an outside format stores it: its names there, the tensors it holds now in that format (whose
/// shapes are the ones expected), and the way from given tensors back to its value.
package struct ExternalParameter {
    package var parameter: Parameter
    package var names: [String]
    package var current: [Tensor]
    package var value: ([Tensor]) -> Tensor

    package init(_ parameter: Parameter, names: [String], current: [Tensor], value: @escaping ([Tensor]) -> Tensor) {
        (self.parameter, self.names, self.current, self.value) = (parameter, names, current, value)
    }

    /// Returns the values of `entries` from `tensors`, checking every name and shape; changes nothing. `source`,
    /// when given, names the dictionary in errors.
    ///
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape.
    package static func values(of entries: [ExternalParameter], from tensors: [String: Tensor],
                               source: String? = nil) throws -> [Tensor] {
        try entries.map { entry in
            try entry.value(zip(entry.names, entry.current).map { name, current in
                let described = source.map { "\(name) (in \($0))" } ?? name
                guard let given = tensors[name] else { throw WeightError.missing(name: described) }
                guard given.shape == current.shape else {
                    throw WeightError.shapeMismatch(name: described, expected: current.shape, actual: given.shape)
                }
                return given
            })
        }
    }
}

/// The built-in layers and cells whose weights other formats name: the first key of the weight tables.
package enum WeightKind: Sendable, Hashable {
    case dense, dropout, embedding, simpleRNN, lstm, peepholeLSTM, indRNN
    /// A GRU with `resetAfter` (PyTorch's and Keras' default): a `[2, 3·hidden]` bias.
    case gru
    /// A GRU with `resetAfter: false`: one `[3·hidden]` bias, which PyTorch has no twin for.
    case gruResetBefore

    /// The kind of a built-in layer or cell; `nil` for a custom one and for wrappers (whose cells have kinds).
    package init?(of object: AnyObject) {
        switch object {
        case is Dense: self = .dense
        case is Dropout: self = .dropout
        case is Embedding: self = .embedding
        case is SimpleRNNCell: self = .simpleRNN
        case is LSTMCell: self = .lstm
        case is PeepholeLSTMCell: self = .peepholeLSTM
        case is IndRNNCell: self = .indRNN
        case let cell as GRUCell: self = cell.resetAfter ? .gru : .gruResetBefore
        default: return nil
        }
    }

    /// Whether the kind is a cell, whose PyTorch names carry the layer index and direction (`_l0_reverse`).
    package var isCell: Bool {
        switch self {
        case .dense, .dropout, .embedding: false
        case .simpleRNN, .lstm, .peepholeLSTM, .indRNN, .gru, .gruResetBefore: true
        }
    }
}

/// How one Unroll parameter is stored in PyTorch: under which names (two for a split bias) and in which layout.
package struct PyTorchLayout: Sendable {
    /// The conversion from Unroll's (Keras') layout to PyTorch's.
    package enum Conversion: Sendable {
        /// The same tensor.
        case same
        /// `[m, n]` becomes `[n, m]` (a `Linear`'s or IndRNN's input weight).
        case transposed
        /// `[m, gates·n]` becomes `[gates·n, m]` with gate block `k` taken from block `order[k]`.
        case gateKernel(order: [Int])
        /// A `[gates·n]` vector with its gate blocks reordered.
        case gateBias(order: [Int])
        /// One fused bias becomes `bias_ih` and `bias_hh` (their sum on the way back), blocks reordered.
        case splitBias(order: [Int])
        /// A `[2, gates·n]` bias becomes its two rows, `bias_ih` and `bias_hh`, blocks reordered.
        case rowBiases(order: [Int])
    }

    /// PyTorch's names, without the layer prefix and the `_l0` suffix.
    package var names: [String]
    /// The layout conversion.
    package var conversion: Conversion

    init(_ names: String..., conversion: Conversion) {
        self.names = names
        self.conversion = conversion
    }

    /// PyTorch's gate orders as positions in Unroll's: LSTM i, f, g, o is Keras' i, f, c, o; GRU r, z, n is
    /// Keras' z, r, h with the first two swapped.
    private static let lstmOrder = [0, 1, 2, 3], gruOrder = [1, 0, 2]

    private static func fused(order: [Int], bias: PyTorchLayout) -> [String: PyTorchLayout] {
        ["kernel": PyTorchLayout("weight_ih", conversion: .gateKernel(order: order)),
         "recurrent_kernel": PyTorchLayout("weight_hh", conversion: .gateKernel(order: order)),
         "bias": bias]
    }

    /// The table: kind, then the parameter's own name (its part), to PyTorch's names and layout.
    package static let table: [WeightKind: [String: PyTorchLayout]] = {
        let lstm = fused(order: lstmOrder, bias: PyTorchLayout("bias_ih", "bias_hh", conversion: .splitBias(order: lstmOrder)))
        return [
            .dense: ["kernel": PyTorchLayout("weight", conversion: .transposed), "bias": PyTorchLayout("bias", conversion: .same)],
            .embedding: ["embeddings": PyTorchLayout("weight", conversion: .same)],
            .simpleRNN: fused(order: [0], bias: PyTorchLayout("bias_ih", "bias_hh", conversion: .splitBias(order: [0]))),
            .lstm: lstm,
            .peepholeLSTM: lstm.merging([
                "input_gate_peephole_weights": PyTorchLayout("peephole_i", conversion: .same),
                "forget_gate_peephole_weights": PyTorchLayout("peephole_f", conversion: .same),
                "output_gate_peephole_weights": PyTorchLayout("peephole_o", conversion: .same),
            ]) { a, _ in a },
            .gru: fused(order: gruOrder, bias: PyTorchLayout("bias_ih", "bias_hh", conversion: .rowBiases(order: gruOrder))),
            .gruResetBefore: fused(order: gruOrder, bias: PyTorchLayout("bias", conversion: .gateBias(order: gruOrder))),
            .indRNN: ["kernel": PyTorchLayout("weight_ih", conversion: .transposed),
                      "recurrent_kernel": PyTorchLayout("recurrent_weight", conversion: .same),
                      "bias": PyTorchLayout("bias", conversion: .same)],
        ]
    }()

    /// Returns the PyTorch tensors of an Unroll value, one per name.
    package func pyTorchTensors(from value: Tensor, biasSplit: BiasSplit = .inputOnly) -> [Tensor] {
        switch conversion {
        case .same: [value]
        case .transposed: [value.transposed()]
        case .gateKernel(let order): [Self.reorderBlocks(value.transposed(), order: order)]
        case .gateBias(let order): [Self.reorderBlocks(value, order: order)]
        case .splitBias(let order):
            [Self.reorderBlocks(value, order: order),
             biasSplit == .duplicated ? Self.reorderBlocks(value, order: order) : Tensor.zeros(value.shape)]
        case .rowBiases(let order):
            (0..<2).map { row in
                Self.reorderBlocks(value.slice(along: 0, row..<(row + 1)).reshaped(to: [value.shape[1]]), order: order)
            }
        }
    }

    /// Returns the Unroll value of PyTorch tensors given one per name, in the shapes ``pyTorchTensors(from:biasSplit:)``
    /// makes (every order here is its own inverse).
    package func value(fromPyTorch tensors: [Tensor]) -> Tensor {
        switch conversion {
        case .same: tensors[0]
        case .transposed: tensors[0].transposed()
        case .gateKernel(let order): Self.reorderBlocks(tensors[0], order: order).transposed()
        case .gateBias(let order): Self.reorderBlocks(tensors[0], order: order)
        case .splitBias(let order): Self.reorderBlocks(tensors[0] + tensors[1], order: order)
        case .rowBiases(let order):
            Tensor.concatenate(tensors.map { Self.reorderBlocks($0, order: order).reshaped(to: [1, $0.count]) }, along: 0)
        }
    }

    /// The parameter stored under `names` (``names`` with a prefix and suffix) in this layout.
    package func external(_ parameter: Parameter, names: [String]) -> ExternalParameter {
        ExternalParameter(parameter, names: names, current: pyTorchTensors(from: parameter.value), value: value(fromPyTorch:))
    }

    /// Returns `[gates·n, ...]` with row block `k` taken from block `order[k]` of `tensor`.
    private static func reorderBlocks(_ tensor: Tensor, order: [Int]) -> Tensor {
        if order == Array(0..<order.count) { return tensor }
        let size = tensor.shape[0] / order.count
        return Tensor.concatenate(order.map { tensor.slice(along: 0, ($0 * size)..<(($0 + 1) * size)) }, along: 0)
    }

    /// The PyTorch suffix of a cell's tensors: `_l<stack position>`, then `_reverse` for a backward direction.
    package static func suffix(layerIndex: Int, reverse: Bool) -> String {
        "_l\(layerIndex)" + (reverse ? "_reverse" : "")
    }
}

/// A recurrent cell whose parameters convert to and from PyTorch's `nn.RNN`/`nn.LSTM`/`nn.GRU` layout.
///
/// PyTorch stores `weight_ih [gates·hidden, input]`, `weight_hh [gates·hidden, hidden]` and two biases,
/// gates stacked in its own order (LSTM i, f, g, o; GRU r, z, n). Unroll uses Keras' layout: transposed
/// kernels, one bias (or GRU's `[2, 3·hidden]`), Keras' gate order (LSTM i, f, c, o; GRU z, r, h). The
/// conversions come from one table keyed by the cell's kind and each parameter's name; the built-in
/// `SimpleRNNCell`, `LSTMCell`, `PeepholeLSTMCell`, `GRUCell` and `IndRNNCell` conform.
public protocol PyTorchConvertible: RecurrentCell {}

extension SimpleRNNCell: PyTorchConvertible {}
extension LSTMCell: PyTorchConvertible {}
extension PeepholeLSTMCell: PyTorchConvertible {}
extension GRUCell: PyTorchConvertible {}
extension IndRNNCell: PyTorchConvertible {}

extension PyTorchConvertible {
    /// Each parameter with its PyTorch layout.
    private var pyTorchLayouts: [(parameter: Parameter, layout: PyTorchLayout)] {
        let table = WeightKind(of: self).flatMap { PyTorchLayout.table[$0] } ?? [:]
        return parameters.map { parameter in
            guard let layout = table[parameter.name] else {
                fatalError("\(typeName): no PyTorch layout for its parameter '\(parameter.name)'")
            }
            return (parameter, layout)
        }
    }

    /// Sets the parameters from PyTorch tensors whose names end in `suffix` (`"_l0"`, `"_l0_reverse"`),
    /// checking every name and shape before any parameter changes.
    public func loadPyTorch(_ tensors: [String: Tensor], suffix: String = "") throws {
        guard !parameters.isEmpty else { throw WeightError.notBuilt(layer: typeName) }
        let entries = pyTorchLayouts.map { parameter, layout in
            layout.external(parameter, names: layout.names.map { $0 + suffix })
        }
        let values = try ExternalParameter.values(of: entries, from: tensors)
        for (entry, value) in zip(entries, values) { entry.parameter.value = value }
    }

    /// Returns the parameters in PyTorch's layout, names ending in `suffix`.
    public func pyTorchStateDict(suffix: String = "") -> [String: Tensor] {
        pyTorchTensors(suffix: suffix, biasSplit: .inputOnly) { $0.value }
    }

    /// Returns the parameters' gradients in PyTorch's layout (zeros where none), names ending in `suffix`.
    public func pyTorchGradients(suffix: String = "") -> [String: Tensor] {
        pyTorchTensors(suffix: suffix, biasSplit: .duplicated) { $0.gradient ?? Tensor.zeros($0.shape) }
    }

    private func pyTorchTensors(suffix: String, biasSplit: BiasSplit, _ value: (Parameter) -> Tensor) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (parameter, layout) in pyTorchLayouts {
            for (name, tensor) in zip(layout.names, layout.pyTorchTensors(from: value(parameter), biasSplit: biasSplit)) {
                result[name + suffix] = tensor
            }
        }
        return result
    }
}

extension RNN where Cell: PyTorchConvertible {
    /// Sets the weights from a PyTorch state dict, layer `index` (`_l0`), the `_reverse` direction if asked.
    public func loadPyTorch(_ stateDict: [String: Tensor], layerIndex: Int = 0, reverse: Bool = false) throws {
        try cell.loadPyTorch(stateDict, suffix: PyTorchLayout.suffix(layerIndex: layerIndex, reverse: reverse))
    }

    /// Returns the weights as PyTorch state-dict entries for layer `index`.
    public func pyTorchStateDict(layerIndex: Int = 0, reverse: Bool = false) -> [String: Tensor] {
        cell.pyTorchStateDict(suffix: PyTorchLayout.suffix(layerIndex: layerIndex, reverse: reverse))
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
