import Foundation
import Graph
import Layers

// The architecture half of a model archive: what `model.json` says about each layer. How it is read (every
// number checked before it reaches an initializer with a check) is in LayerConfiguration+JSON.swift;
// how layers are described and rebuilt, in LayerConfiguration+Layers.swift.

/// Bounds on every number a model description may hold. A hostile `model.json` must fail with an error,
/// never reach a layer initializer's check or ask for an allocation the process cannot make.
enum ArchiveLimits {
    /// The largest size (hidden, output, vocabulary, or an input dimension).
    static let maximumSize = 1 << 24
    /// The largest rank of the model's input shape.
    static let maximumRank = 8
    /// The most layers a model may have.
    static let maximumLayerCount = 4096
    /// The most cells a stack may have.
    static let maximumStackedCellCount = 256
    /// The parameter scalars a description may ask for even when its weights file holds fewer (beyond this, no
    /// more than the file holds). Small enough to allocate at once; large enough that a small model loaded
    /// against another model's weights reaches the name-by-name check, which names the tensor.
    static let scalarAllowance = 1 << 20
}

/// The settings of one built-in recurrent cell, enough to create it again.
indirect enum CellConfiguration: Equatable {
    case lstm(hiddenSize: Int, unitForgetBias: Bool)
    case gru(hiddenSize: Int, resetAfter: Bool)
    case simpleRNN(hiddenSize: Int, activation: Activation)
    case peepholeLSTM(hiddenSize: Int)
    case indRNN(hiddenSize: Int, recurrentBound: Float?)
    /// Cells of one kind, lowest first (never itself a stack).
    case stacked([CellConfiguration])

    /// The `kind` written in `model.json`.
    var kind: String {
        switch self {
        case .lstm: "lstm"
        case .gru: "gru"
        case .simpleRNN: "simple_rnn"
        case .peepholeLSTM: "peephole_lstm"
        case .indRNN: "indrnn"
        case .stacked: "stacked"
        }
    }

    /// The output size of the cell (the top cell's, for a stack).
    var hiddenSize: Int {
        switch self {
        case .lstm(let size, _), .gru(let size, _), .simpleRNN(let size, _), .peepholeLSTM(let size),
             .indRNN(let size, _):
            size
        case .stacked(let cells): cells.last?.hiddenSize ?? 0
        }
    }

    /// The number of parameter scalars for an input size, or `nil` when it overflows `Int`.
    func parameterScalarCount(inputSize: Int) -> Int? {
        let h = hiddenSize
        switch self {
        case .lstm: return checkedProduct(4, h, checkedSum(inputSize, h, 1))
        case .peepholeLSTM:
            return checkedSum(checkedProduct(4, h, checkedSum(inputSize, h, 1)), checkedProduct(3, h))
        case .gru(_, let resetAfter):
            return checkedSum(checkedProduct(3, h, checkedSum(inputSize, h)), checkedProduct(3, h, resetAfter ? 2 : 1))
        case .simpleRNN: return checkedProduct(h, checkedSum(inputSize, h, 1))
        case .indRNN: return checkedProduct(h, checkedSum(inputSize, 2))
        case .stacked(let cells):
            var total: Int? = 0
            var size = inputSize
            for cell in cells {
                total = checkedSum(total, cell.parameterScalarCount(inputSize: size))
                size = cell.hiddenSize
            }
            return total
        }
    }
}

/// A recurrent layer's settings: its cell and how it runs over time.
struct RecurrentConfiguration: Equatable {
    var cell: CellConfiguration
    var returnSequences: Bool
    var goBackwards: Bool
    var isStateful: Bool
    /// Keras' `dropout` and `recurrent_dropout` (training only; absent from files written before them: 0).
    var dropout: Float = 0
    var recurrentDropout: Float = 0
}

/// The settings of one layer of a model, enough to create it again (weights aside).
indirect enum LayerConfiguration: Equatable {
    case dense(outputSize: Int, activation: Activation, usesBias: Bool)
    case dropout(rate: Float)
    case embedding(vocabularySize: Int, outputSize: Int, maskZero: Bool)
    case recurrent(RecurrentConfiguration)
    /// `mergeMode` is a validated raw value of ``Bidirectional/MergeMode``.
    case bidirectional(mergeMode: String, layer: RecurrentConfiguration)
    case echoStateNetwork(EchoStateConfiguration)
    case concatenate(axis: Int)
    case add
    case multiply
    case repeatVector(count: Int)
    case timeDistributed(LayerConfiguration)
    case masking(maskValue: Float)

    /// Returns the number of parameter scalars (`nil` on overflow) and the output shape for an input shape.
    ///
    /// This mirrors the layers' own shape rules so that the cost of a description is known before any layer
    /// allocates; where a shape does not fit, the layers' own check reports it afterwards.
    func parameterScalarCount(inputShape: [Int]) -> (count: Int?, outputShape: [Int]) {
        let inputSize = inputShape.last ?? 0
        switch self {
        case .dense(let outputSize, _, let usesBias):
            return (checkedSum(checkedProduct(inputSize, outputSize), usesBias ? outputSize : 0),
                    inputShape.dropLast() + [outputSize])
        case .dropout, .concatenate, .add, .multiply, .masking:
            return (0, inputShape)
        case .repeatVector(let count):
            return (0, [count] + inputShape)
        case .timeDistributed(let layer):
            let (count, shape) = layer.parameterScalarCount(inputShape: Array(inputShape.dropFirst()))
            return (count, [inputShape.first ?? 0] + shape)
        case .embedding(let vocabularySize, let outputSize, _):
            return (checkedProduct(vocabularySize, outputSize), inputShape + [outputSize])
        case .recurrent(let layer):
            return (layer.cell.parameterScalarCount(inputSize: inputSize), layer.outputShape(inputShape))
        case .bidirectional(let mergeMode, let layer):
            var shape = layer.outputShape(inputShape)
            if mergeMode == "concatenate", let last = shape.popLast() { shape.append(2 * last) }
            return (checkedProduct(2, layer.cell.parameterScalarCount(inputSize: inputSize)), shape)
        case .echoStateNetwork(let network):
            let units = network.reservoirSize, outputs = network.outputSize
            let count = checkedSum(checkedProduct(units, checkedSum(inputSize, units, 1)),
                                   checkedProduct(checkedSum(units, 1), outputs))
            return (count, network.returnSequences ? [inputShape.first ?? 0, outputs] : [outputs])
        }
    }
}

/// An echo state network's settings (its reservoir is drawn again on load, then replaced by the saved one).
struct EchoStateConfiguration: Equatable {
    var reservoirSize: Int
    var outputSize: Int
    var spectralRadius: Float
    var leakRate: Float
    var inputScaling: Float
    var connectivity: Float
    var returnSequences: Bool
}

extension RecurrentConfiguration {
    func outputShape(_ inputShape: [Int]) -> [Int] {
        returnSequences ? [inputShape.first ?? 0, cell.hiddenSize] : [cell.hiddenSize]
    }
}

/// Returns the sum, or `nil` when an operand is `nil` or the sum overflows.
func checkedSum(_ terms: Int?...) -> Int? {
    var total = 0
    for term in terms {
        guard let term else { return nil }
        let (sum, overflow) = total.addingReportingOverflow(term)
        if overflow { return nil }
        total = sum
    }
    return total
}

/// Returns the product, or `nil` when a factor is `nil` or the product overflows.
func checkedProduct(_ factors: Int?...) -> Int? {
    var total = 1
    for factor in factors {
        guard let factor else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        total = product
    }
    return total
}
