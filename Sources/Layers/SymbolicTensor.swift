import Graph
import Synchronization

/// A tensor of a model under construction: a shape and the layer call that will compute it.
///
/// Keras' `KerasTensor`. `Input(shape:)` makes one; calling a layer on symbolic tensors records a
/// ``LayerCall`` and returns its outputs, so a model is written as the function it computes:
/// ```swift
/// let series = Input(shape: [8, 1]), quarter = Input(shape: [4])
/// let features = Concatenate()([LSTM(hiddenSize: 16)(series), quarter])
/// let model = try Model(inputs: [series, quarter], outputs: [Dense(outputSize: 1)(features)])
/// ```
/// Shapes leave out the batch axis. A call that cannot take its inputs still returns tensors: the
/// problem is kept in its ``LayerCall`` and `Model(inputs:outputs:)` throws it, naming the layers.
public final class SymbolicTensor: CustomStringConvertible {
    /// The shape without the batch axis (empty when the call that makes it failed).
    public let shape: [Int]
    /// The layer call that computes this tensor.
    public let call: LayerCall
    /// Which of the call's outputs this is.
    public let outputIndex: Int

    init(shape: [Int], call: LayerCall, outputIndex: Int) {
        self.shape = shape
        self.call = call
        self.outputIndex = outputIndex
    }

    /// Creates a model input, as Keras' `keras.Input(shape=...)` (the shape leaves out the batch axis).
    public convenience init(shape: [Int]) {
        let layer = InputLayer(shape: shape)
        let call = LayerCall(layer: layer, inputs: [], outputShapes: [shape], problem: layer.invalidSettings.first) { ($0, $1) }
        self.init(shape: shape, call: call, outputIndex: 0)
    }

    /// Whether this tensor is a model input (made by `Input(shape:)`).
    public var isInput: Bool { call.layer is InputLayer }

    /// `(None, 8, 1)`, as Keras prints shapes.
    public var description: String { "(None" + shape.map { ", \($0)" }.joined() + ")" }
}

/// Keras' `keras.Input`: `Input(shape: [time, features])` creates a model input.
public typealias Input = SymbolicTensor

/// One call of a layer on symbolic tensors: a node of a model's layer graph.
///
/// A layer called twice has two calls and one set of weights (shared layers). The call keeps the
/// function it runs on graph nodes, so layers with several inputs or outputs (merges, a recurrent
/// layer's initial and final states) need no protocol of their own.
public final class LayerCall {
    /// The layer called.
    public let layer: any Layer
    /// The tensors passed in, in order.
    public let inputs: [SymbolicTensor]
    /// The shapes of the outputs (without the batch axis).
    public let outputShapes: [[Int]]
    /// Why the layer cannot take these inputs, if it cannot (thrown by `Model(inputs:outputs:)`).
    public let problem: (any Error)?
    /// The order calls were made in, over the whole process (Keras numbers a layer's calls this way).
    public let creationIndex: Int
    /// Computes the outputs and their masks from the inputs' nodes and masks.
    let function: CallFunction

    private static let counter = Atomic<Int>(0)

    init(layer: any Layer, inputs: [SymbolicTensor], outputShapes: [[Int]], problem: (any Error)?,
         function: @escaping CallFunction) {
        self.layer = layer
        self.inputs = inputs
        self.outputShapes = outputShapes
        self.problem = problem
        self.function = function
        self.creationIndex = LayerCall.counter.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    /// Records a call and returns its output tensors. `shapes` builds the layer and infers the output
    /// shapes; when it throws (or an input comes from a failed call) the outputs get an empty shape.
    static func record(_ layer: any Layer, inputs: [SymbolicTensor], outputCount: Int,
                       shapes: () throws -> [[Int]], function: @escaping CallFunction) -> [SymbolicTensor] {
        var outputShapes = [[Int]](repeating: [], count: outputCount)
        var problem: (any Error)?
        if inputs.allSatisfy({ $0.call.problem == nil }) {
            do { outputShapes = try shapes() } catch { problem = error }
        } else {
            problem = UpstreamFailure()
        }
        let call = LayerCall(layer: layer, inputs: inputs, outputShapes: outputShapes, problem: problem, function: function)
        return outputShapes.enumerated().map { SymbolicTensor(shape: $1, call: call, outputIndex: $0) }
    }

    /// What a call runs: input nodes and their masks (`[batch, time]`, or `nil`) to output nodes and masks.
    public typealias CallFunction = ([Node], [Tensor?]) -> (nodes: [Node], masks: [Tensor?])

    /// Runs the call on its inputs' nodes and masks, under a scope named for the layer so the tape shows it.
    public func callAsFunction(_ inputs: [Node], masks: [Tensor?], scope: String) -> (nodes: [Node], masks: [Tensor?]) {
        guard let first = inputs.first else { return function(inputs, masks) }
        return withScope(scope, on: first) { function(inputs, masks) }
    }
}

/// An input of a call comes from a call that already failed (only that first failure is reported).
package struct UpstreamFailure: Error {}

/// The layer behind `Input(shape:)`: it holds a model input's shape and computes nothing.
public final class InputLayer: Layer {
    /// The input's shape without the batch axis.
    public let shape: [Int]

    /// Creates an input layer.
    public init(shape: [Int]) { self.shape = shape }

    /// "InputLayer".
    public var typeName: String { "InputLayer" }
    /// None.
    public var parameters: [Parameter] { [] }
    /// The input's shape.
    public var declaredInputShape: [Int]? { shape }
    /// The shape itself.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shape }
    /// Nothing to build.
    public func build(inputShape: [Int]) throws {}
    /// The input itself.
    public func callAsFunction(_ input: Node) -> Node { input }
    /// Every axis must be positive.
    public var invalidSettings: [SettingError] {
        SettingError.unless(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, typeName, "shape", shape, "must be non-empty with positive sizes")
    }
}

extension Layer {
    /// Calls the layer on a symbolic tensor, recording the call in the model graph (Keras' `layer(x)`).
    ///
    /// The layer is built for the input's shape now; a shape it cannot take is reported by
    /// `Model(inputs:outputs:)`, naming both layers and the shape.
    public func callAsFunction(_ input: SymbolicTensor) -> SymbolicTensor {
        LayerCall.record(self, inputs: [input], outputCount: 1, shapes: {
            if let problem = invalidSettings.first { throw problem }
            try build(inputShape: input.shape)
            return [try outputShape(forInputShape: input.shape)]
        }, function: { [self] nodes, masks in
            let (output, mask) = self(nodes[0], withMask: masks[0])
            return ([output], [mask])
        })[0]
    }

    /// Returns the output for an input whose steps are real where `mask` (`[batch, time]`) is 1, and the
    /// output's mask: a ``MaskAwareLayer`` honours and makes masks, any other layer passes the mask on while
    /// it keeps the time axis. Functional models and `Sequential` both run their layers through this.
    public func callAsFunction(_ input: Node, withMask mask: Tensor?) -> (output: Node, mask: Tensor?) {
        if let aware = self as? any MaskAwareLayer {
            return (aware(input, mask: mask), aware.outputMask(for: input, mask: mask))
        }
        let output = self(input)
        return (output, passedOn(mask, to: output))
    }
}

/// A mask passes through a layer that keeps the time axis (`Dense` on `[batch, time, features]`, `Dropout`),
/// as Keras' layers that support masking do; it ends where the time axis does.
func passedOn(_ mask: Tensor?, to output: Node) -> Tensor? {
    guard let mask, output.shape.count >= 3, output.shape[0] == mask.shape[0], output.shape[1] == mask.shape[1] else { return nil }
    return mask
}
