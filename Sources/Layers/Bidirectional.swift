import Graph

/// Runs one recurrent layer forwards and a twin backwards over the same sequence and merges them.
///
/// `Bidirectional(LSTM(hiddenSize: 8, returnSequences: true))` evaluates its argument twice, so the
/// two directions get independent weights. The backward direction's outputs are put back in time
/// order before merging (as Keras and PyTorch do), so step `t` of the output sees the whole sequence.
public final class Bidirectional<Cell: RecurrentCell>: WholeSequenceLayer {
    /// How the two directions' outputs are combined.
    public enum MergeMode: String, Sendable {
        /// Concatenated on the feature axis, forward first (the default).
        case concatenate
        /// Added.
        case sum
        /// Multiplied element-wise.
        case multiply
        /// Averaged.
        case average
    }

    /// The layer run from the first step to the last.
    public let forward: RNN<Cell>
    /// The layer run from the last step to the first.
    public let backward: RNN<Cell>
    /// How the two outputs are combined.
    public let mergeMode: MergeMode

    /// Whether one layer object came back for both directions and could not be copied.
    private let isSharedLayer: Bool

    /// Creates a bidirectional wrapper; `layer` is evaluated twice, once per direction.
    ///
    /// When both evaluations return the same object (a layer held in a variable), the backward direction gets a
    /// fresh copy (same settings, new weights, as Keras does) if the cell is a ``ReplicableCell``; otherwise
    /// `compile` reports the shared layer as an invalid setting.
    public init(_ layer: @autoclosure () -> RNN<Cell>, mergeMode: MergeMode = .concatenate) {
        forward = layer()
        let second = layer()
        if second !== forward {
            backward = second
            isSharedLayer = false
        } else if let cell = freshCopy(of: forward.cell) {
            backward = RNN(cell, returnSequences: forward.returnSequences, goBackwards: forward.goBackwards,
                           isStateful: forward.isStateful, inputShape: forward.declaredInputShape)
            isSharedLayer = false
        } else {
            backward = RNN(forward.cell, returnSequences: forward.returnSequences, goBackwards: forward.goBackwards,
                           isStateful: forward.isStateful, inputShape: forward.declaredInputShape)
            isSharedLayer = true
        }
        backward.goBackwards = !forward.goBackwards
        forward.scopeName += "_forward"
        backward.scopeName += "_backward"
        self.mergeMode = mergeMode
    }

    /// "Bidirectional".
    public var typeName: String { "Bidirectional" }
    /// The forward layer's parameters, then the backward layer's.
    public var parameters: [Parameter] { forward.parameters + backward.parameters }
    /// Both directions' invalid settings.
    public var invalidSettings: [SettingError] {
        SettingError.unless(!isSharedLayer, typeName, "layer", "one \(forward.typeName) object for both directions",
                            "needs its own layer per direction: write Bidirectional(\(forward.typeName)(...)), or make the "
                                + "cell a ReplicableCell so the backward direction gets a copy")
            + forward.invalidSettings + backward.invalidSettings
    }
    /// The wrapped layer's input shape.
    public var declaredInputShape: [Int]? { forward.declaredInputShape }

    /// The wrapped layer's output shape, its feature axis doubled when concatenating.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        var result = try forward.outputShape(forInputShape: shape)
        if mergeMode == .concatenate { result[result.count - 1] *= 2 }
        return result
    }

    /// Builds both directions.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
        try forward.build(inputShape: inputShape)
        try backward.build(inputShape: inputShape)
    }

    /// Returns the merged outputs.
    public func callAsFunction(_ input: Node) -> Node {
        let ahead = forward.run(input).outputs
        let behind = backward.run(input).outputs
        if forward.returnSequences {
            return merge(RNN<Cell>.stack(ahead), RNN<Cell>.stack(behind.reversed()), axis: 2)
        }
        return merge(ahead.last!, behind.last!, axis: 1)
    }

    func merge(_ a: Node, _ b: Node, axis: Int) -> Node {
        switch mergeMode {
        case .concatenate: concatenate([a, b], along: axis)
        case .sum: a + b
        case .multiply: a * b
        case .average: (a + b) * 0.5
        }
    }

    /// Forgets both directions' carried states.
    public func resetStates() {
        forward.resetStates()
        backward.resetStates()
    }

    /// Whether both directions can be compiled.
    public var supportsCompilation: Bool { forward.supportsCompilation && backward.supportsCompilation }

    /// Applies both directions' constraints.
    public func applyConstraints() {
        forward.applyConstraints()
        backward.applyConstraints()
    }
}
