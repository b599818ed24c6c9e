import Foundation
import Graph
import Layers
import Serialization

/// A linear stack of layers with Keras' workflow: `add`, `compile`, `fit`, `predict`, `evaluate`, `summary`.
///
/// ```swift
/// let model = Sequential()
/// model.add(LSTM(hiddenSize: 400, inputShape: [pastSteps, 1]))
/// model.add(Dense(outputSize: futureSteps))
/// try model.compile(loss: .meanSquaredError, optimizer: Adam())
/// print(model.summary())
/// let history = try model.fit(x, y, epochs: 200, batchSize: 128)
/// ```
/// Shapes leave out the batch axis. They are inferred layer by layer from the first layer's input
/// shape; an incompatible stack throws at `compile` naming both layers and the shape between them.
public final class Sequential {
    /// The layers, first to last.
    public private(set) var layers: [Layer]
    /// The loss set by `compile`.
    public private(set) var loss: Loss?
    /// The optimizer set by `compile`.
    public private(set) var optimizer: (any Optimizer)?
    /// The metrics set by `compile`.
    public private(set) var metrics: [Metric] = []
    /// The model's name in summaries.
    public var name: String
    private let explicitInputShape: [Int]?
    /// The tape training steps record on (cleared after each step, its storage kept).
    let trainingTape = Tape()
    /// The number of nodes the last training step recorded on its tape (graph inspection of memory use).
    public internal(set) var lastTapeNodeCount = 0
    /// The number of scalars the last training step's tape held for the backward pass.
    public internal(set) var lastTapeScalarCount = 0
    /// The most scalars the last training step held for the backward pass at once: its tape plus the
    /// largest segment a checkpointing layer rebuilt (``Tape/peakSavedScalarCount``).
    public internal(set) var lastTapePeakScalarCount = 0
    /// Whether training and inference run compiled plans (``compile(loss:optimizer:metrics:jitCompile:)``).
    public private(set) var jitCompile = true
    /// Compiled plans by input shapes, for the structure they were traced from.
    var plans = PlanCache()

    /// Creates a model, optionally with its input shape (otherwise the first layer's `inputShape:` is used).
    public init(_ layers: [Layer] = [], inputShape: [Int]? = nil, name: String = "sequential") {
        self.layers = layers
        self.explicitInputShape = inputShape
        self.name = name
    }

    /// Appends a layer.
    public func add(_ layer: Layer) {
        layers.append(layer)
        plans.removeAll()
    }

    /// The input shape: given to the model, else to its first layer.
    public var inputShape: [Int]? { explicitInputShape ?? layers.first?.declaredInputShape }

    /// Sets the loss, optimizer and metrics, and builds every layer, checking that the shapes fit and that the
    /// optimizer's settings are in range (``Optimizer/checkSettings()``).
    ///
    /// With `jitCompile` (the default, Keras' name) the first training step for each input shape is recorded
    /// and compiled into a ``Plan`` that later steps replay (fused element-wise sweeps, one arena); inference
    /// likewise. `false` runs every step eagerly on a fresh tape, for debugging and graph inspection. Layers
    /// whose recorded graph depends on more than shapes (active dropout, embeddings, masks read from the data)
    /// run eagerly either way; stateful recurrent layers and truncated BPTT windows compile with the carried
    /// state fed as a plan input; sparse targets are fed to a plan as their one-hot.
    public func compile(loss: Loss, optimizer: any Optimizer, metrics: [Metric] = [], jitCompile: Bool = true) throws {
        try optimizer.checkSettings()
        _ = try layerShapes()
        self.loss = loss
        self.optimizer = optimizer
        self.metrics = metrics
        self.jitCompile = jitCompile
        plans.removeAll()
    }

    /// Returns the output shape of every layer, building the layers on the way.
    func layerShapes() throws -> [[Int]] {
        guard let first = layers.first else { throw TrainingError.noLayers }
        guard var shape = inputShape else { throw TrainingError.missingInputShape(layer: first.typeName) }
        var shapes: [[Int]] = []
        // Names are made only for an error: every training step checks the shapes, and naming the layers
        // cost small models about a fifth of a step.
        func describe(_ index: Int) -> String { index < 0 ? "input" : "\(layerNames[index]) (\(layers[index].typeName))" }
        for (index, layer) in layers.enumerated() {
            do {
                try layer.build(inputShape: shape)
                shape = try layer.outputShape(forInputShape: shape)
            } catch let error as SettingError {
                throw TrainingError.invalidSetting(layer: describe(index), setting: error.setting,
                                                   value: error.value, requirement: error.requirement)
            } catch let error as ShapeError {
                throw TrainingError.incompatibleLayers(previous: describe(index - 1), next: describe(index),
                                                       shape: shape, reason: error.message)
            }
            shapes.append(shape)
        }
        return shapes
    }

    /// The output shape of the model (without the batch axis).
    public var outputShape: [Int]? { try? layerShapes().last }

    /// Keras-style layer names: the type in snake case, numbered from the second of a kind (`lstm`, `lstm_1`).
    public var layerNames: [String] { LayerNames.names(of: layers) }

    /// Returns the model's output for a batch, recording onto the input's tape if it has one. A mask made by
    /// `Masking` or `Embedding(maskZero: true)` is honoured by the layers after it, as in a functional `Model`.
    public func callAsFunction(_ input: Node) -> Node { run(input).output }

    /// Returns the output and its mask (`[batch, time]`, 1 for a real step) when a `Masking` or
    /// `Embedding(maskZero: true)` made one and the layers after it kept the time axis.
    public func run(_ input: Node) -> (output: Node, mask: Tensor?) {
        layers.reduce((output: input, mask: nil as Tensor?)) { $1($0.output, withMask: $0.mask) }
    }

    /// Clears the carried state of every stateful layer.
    public func resetStates() { layers.forEach { $0.resetStates() } }

    static func format(_ shape: [Int]) -> String {
        "(None" + shape.map { ", \($0)" }.joined() + ")"
    }
}
