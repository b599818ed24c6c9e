import Foundation
import Graph
import Layers
import Serialization

/// A model defined by its inputs and outputs: the layer graph that links them (Keras' functional API).
///
/// ```swift
/// let encoderInputs = Input(shape: [7, 12]), decoderInputs = Input(shape: [4, 12])
/// let (_, h, c) = LSTM(hiddenSize: 128)(encoderInputs)
/// let decoded = LSTM(hiddenSize: 128, returnSequences: true)(decoderInputs, initialState: [h, c])
/// let model = try Model(inputs: [encoderInputs, decoderInputs],
///                       outputs: [Dense(outputSize: 12, activation: .softmax)(decoded)])
/// ```
/// Construction walks back from the outputs and checks the whole wiring: a layer that cannot take its
/// inputs, an input no output needs, or an output that needs an input not listed throws ``ModelError``,
/// naming layers and shapes. A layer called twice appears once and shares its weights between calls.
public final class Model {
    /// The model's inputs, in the order `predict` and `fit` take arrays.
    public let inputs: [SymbolicTensor]
    /// The model's outputs, in the order `predict` returns arrays.
    public let outputs: [SymbolicTensor]
    /// Every layer once, input layers included, in Keras' order (deepest first, then by traversal).
    public let layers: [any Layer]
    /// Keras-style names of ``layers`` (`input_layer`, `lstm`, `lstm_1`), numbered in call order.
    public let layerNames: [String]
    /// Every layer call, in an order where each call follows the calls it reads from.
    public let calls: [LayerCall]
    /// The model's name in summaries.
    public var name: String
    /// The loss of each output, set by `compile`.
    public internal(set) var losses: [Loss] = []
    /// The weight of each output's loss in the total, set by `compile` (ones by default).
    public internal(set) var lossWeights: [Float] = []
    /// The metrics of each output, set by `compile`.
    public internal(set) var metrics: [[Metric]] = []
    /// The optimizer set by `compile`.
    public internal(set) var optimizer: (any Optimizer)?
    /// Whether training and inference replay compiled plans (``compile(losses:lossWeights:optimizer:metrics:jitCompile:)``).
    public internal(set) var jitCompile = true
    /// The tape training steps record on (cleared after each step, its storage kept).
    let trainingTape = Tape()
    /// Compiled plans by the shapes of every input and target, for the structure they were traced from.
    var plans = PlanCache()

    /// Creates a model from its input and output tensors, checking the wiring.
    ///
    /// - Throws: ``ModelError`` for a layer that cannot take its inputs, an unused input, an output that
    ///   depends on an input not in `inputs`, or a tensor in `inputs` that `Input(shape:)` did not make.
    public init(inputs: [SymbolicTensor], outputs: [SymbolicTensor], name: String = "functional") throws {
        guard !inputs.isEmpty else { throw ModelError.empty(what: "input") }
        guard !outputs.isEmpty else { throw ModelError.empty(what: "output") }
        self.inputs = inputs
        self.outputs = outputs
        self.name = name
        let graph = try LayerGraph(inputs: inputs, outputs: outputs)
        calls = graph.calls
        layers = graph.layers
        layerNames = graph.names
        try graph.check(inputs: inputs, outputs: outputs)
    }

    /// Creates a model with one input and one output.
    public convenience init(inputs: SymbolicTensor, outputs: SymbolicTensor, name: String = "functional") throws {
        try self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    /// The input shapes without the batch axis.
    public var inputShapes: [[Int]] { inputs.map(\.shape) }
    /// The output shapes without the batch axis.
    public var outputShapes: [[Int]] { outputs.map(\.shape) }

    /// The name of a layer of this model (`"lstm_1"`).
    public func name(of layer: any Layer) -> String {
        layerNames[layers.firstIndex { $0 === layer }!]
    }

    /// Returns the outputs for a batch of each input (`[batch, ...inputShape]`, in the order of ``inputs``),
    /// recording onto the inputs' tape if they have one; each layer's nodes are scoped with its name.
    public func callAsFunction(_ inputValues: [Node]) -> [Node] { run(inputValues).outputs }

    /// Returns the outputs and their masks (`[batch, time]` where a `Masking` or `Embedding(maskZero:)`
    /// made one and the layers after it kept the time axis).
    public func run(_ inputValues: [Node]) -> (outputs: [Node], masks: [Tensor?]) {
        check(inputValues.count == inputs.count, "\(name): expects \(inputs.count) inputs, got \(inputValues.count)")
        var values: [TensorKey: Node] = [:], masks: [TensorKey: Tensor] = [:]
        for (input, value) in zip(inputs, inputValues) { values[TensorKey(input)] = value }
        for call in calls where values[TensorKey(call, 0)] == nil {
            let keys = call.inputs.map(TensorKey.init)
            let results = call(keys.map { values[$0]! }, masks: keys.map { masks[$0] }, scope: name(of: call.layer))
            for (index, (node, mask)) in zip(results.nodes, results.masks).enumerated() {
                values[TensorKey(call, index)] = node
                masks[TensorKey(call, index)] = mask
            }
        }
        return (outputs.map { values[TensorKey($0)]! }, outputs.map { masks[TensorKey($0)] })
    }

    /// Returns the output of a model with one input and one output.
    public func callAsFunction(_ input: Node) -> Node { self([input])[0] }

    /// Clears the carried state of every stateful layer.
    public func resetStates() { layers.forEach { $0.resetStates() } }
}

/// Identifies a symbolic tensor by the call that makes it and its output index.
struct TensorKey: Hashable {
    let call: ObjectIdentifier
    let index: Int
    init(_ call: LayerCall, _ index: Int) { self.call = ObjectIdentifier(call); self.index = index }
    init(_ tensor: SymbolicTensor) { self.init(tensor.call, tensor.outputIndex) }
}
