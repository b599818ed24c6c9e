import Graph

/// Runs a ``RecurrentCell`` over the time axis of `[batch, time, features]` inputs.
///
/// This is the one time loop of the framework. The input projection of every step is one matrix
/// product before the loop (time-major, so each step's slice is a view); each step's nodes carry a
/// scope label (`"lstm/t3"`) for graph inspection; the loop itself is ordinary recorded nodes, so
/// backpropagation through time needs no code of its own. With ``checkpointing`` the loop runs in
/// segments, each projecting its own rows and recorded as one checkpoint node (`RNN+Checkpointing.swift`).
///
/// `LSTM`, `GRU`, `SimpleRNN`, `PeepholeLSTM` and `IndRNN` are this type with a built-in cell.
public final class RNN<Cell: RecurrentCell>: StatefulRecurrentLayer {
    /// The cell run at every step.
    public let cell: Cell
    /// Whether the output is every step's output `[batch, time, hidden]` rather than the last `[batch, hidden]`.
    public let returnSequences: Bool
    /// Whether the sequence is processed from its last step to its first (the output keeps that order, as in Keras).
    public internal(set) var goBackwards: Bool
    /// Whether the final state of one batch is the initial state of the next (until ``resetStates()``).
    public var isStateful: Bool
    /// The input shape given at creation.
    public let declaredInputShape: [Int]?
    /// The label of this layer's nodes on a tape.
    public var scopeName: String
    /// Whether training keeps every step's values for the backward pass or only every k-th state,
    /// recomputing the steps in between (``Checkpointing``). Runs without a tape ignore it.
    public var checkpointing: Checkpointing = .none
    /// Whether checkpointed segments run compiled plans (traced once per segment shape and kept) rather
    /// than eager nodes; the gradients are the same up to rounding.
    public var compilesCheckpointedSegments = true
    /// The compiled segments of checkpointed runs.
    let checkpointPlans = CheckpointPlans()
    /// The fraction of input features dropped in training, one mask per sequence reused at every step (Keras' `dropout`).
    public var dropout: Float = 0
    /// The fraction of the previous hidden state dropped where it enters the recurrent product in training,
    /// one mask per sequence reused at every step (Keras' `recurrent_dropout`).
    public var recurrentDropout: Float = 0
    /// Draws the dropout masks (`seedDropout(_:)` restarts it).
    var dropoutGenerator = SeededGenerator(seed: 0)
    /// The final state of the last call of a stateful layer, the next call's initial state (`nil`: zeros).
    public var carriedState: [Tensor]?
    /// The taped calls while stateful, oldest first, while a compiled step records them (else `nil`).
    public var recordedStates: [RecordedState]?

    /// Creates a recurrent layer from a cell.
    public init(_ cell: Cell, returnSequences: Bool = false, goBackwards: Bool = false, isStateful: Bool = false,
                dropout: Float = 0, recurrentDropout: Float = 0, inputShape: [Int]? = nil) {
        self.cell = cell
        self.returnSequences = returnSequences
        self.goBackwards = goBackwards
        self.isStateful = isStateful
        self.dropout = dropout
        self.recurrentDropout = recurrentDropout
        self.declaredInputShape = inputShape
        self.scopeName = cell.typeName.lowercased()
        if let inputShape, inputShape.count == 2, cell.invalidSettings.isEmpty { cell.build(inputSize: inputShape[1]) }
    }

    /// The cell's kind (`"LSTM"`).
    public var typeName: String { cell.typeName }
    /// The cell's parameters.
    public var parameters: [Parameter] { cell.parameters }
    /// The cell's invalid settings.
    public var invalidSettings: [SettingError] { cell.invalidSettings + dropoutSettingErrors }

    /// `[time, hidden]` with `returnSequences`, else `[hidden]`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard shape.count == 2 else {
            throw ShapeError(layer: typeName, message: "expects input [time, features], got \(shape)")
        }
        if let inputSize = cell.inputSize, inputSize != shape[1] {
            throw ShapeError(layer: typeName, message: "built for \(inputSize) features, got \(shape[1])")
        }
        return returnSequences ? [shape[0], cell.hiddenSize] : [cell.hiddenSize]
    }

    /// Builds the cell for the input's feature count.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
        _ = try outputShape(forInputShape: inputShape)
        cell.build(inputSize: inputShape[1])
    }

    /// Runs the sequence and returns every step's output (in processing order) and the final state.
    ///
    /// `initialState` defaults to the carried state of a stateful layer, else zeros.
    /// With a `mask` (`[batch, time]`, 1 for a real step), a masked step keeps the previous state and output.
    public func run(_ input: Node, initialState: Cell.State? = nil, mask: Tensor? = nil) -> (outputs: [Node], finalState: Cell.State) {
        check(input.shape.count == 3, "\(typeName): expects [batch, time, features], got \(input.shape)")
        let (batch, steps, features) = (input.shape[0], input.shape[1], input.shape[2])
        if cell.inputSize == nil { cell.build(inputSize: features) }
        check(cell.inputSize == features, "\(typeName): built for \(cell.inputSize!) features, got \(features)")
        return withScope(scopeName, on: input) {
            let start = startState(for: input, initialState: initialState)
            var state = start
            let (inputMask, recurrentMask) = dropoutMasks(for: input)
            let timeMajor = (inputMask.map { input * $0 } ?? input).transposed(permutation: [1, 0, 2]).reshaped(to: [steps * batch, features])
            let projected = cell.projectInput(timeMajor)
            let width = projected.shape[1]
            var outputs: [Node] = []
            outputs.reserveCapacity(steps)
            for k in 0..<steps {
                let t = goBackwards ? steps - 1 - k : k
                var (output, next) = withScope("t\(t)", on: input) {
                    let stepInput = projected.slice(along: 0, (t * batch)..<((t + 1) * batch)).reshaped(to: [batch, width])
                    return recurrentMask.map { cell(stepInput, state: state, recurrentMask: $0) } ?? cell(stepInput, state: state)
                }
                if let mask {
                    let previous = outputs.last ?? input.onSameTape(Tensor.zeros(output.shape))
                    (output, next) = RNN.holding((output, next), previous: (previous, state), mask: mask, at: t, on: input)
                }
                outputs.append(output)
                state = next
            }
            noteFinalState(state, startingFrom: initialState == nil ? start : nil, on: input)
            return (outputs, state)
        }
    }

    /// The state the first step starts from: `initialState`, else the carried state of a stateful
    /// layer (when its batch size matches), else zeros; lifted onto the input's tape.
    func startState(for input: Node, initialState: Cell.State?) -> Cell.State {
        if let initialState { return initialState }
        if isStateful { return Cell.State(nodes: startStateValues(batchSize: input.shape[0]).map { input.onSameTape($0) }) }
        return Cell.State(nodes: cell.zeroState(batchSize: input.shape[0]).nodes.map { input.onSameTape($0.value) })
    }

    /// Keeps the final state of a stateful call for the next one and, on a tape, the leaves it started from
    /// (`start`, `nil` when the caller gave the initial state) and its final nodes, for a compiled step to feed
    /// and read back (``recordedStates``).
    func noteFinalState(_ state: Cell.State, startingFrom start: Cell.State?, on input: Node) {
        guard isStateful else { return }
        carriedState = state.nodes.map(\.value)
        if input.tape != nil { recordedStates?.append(RecordedState(start: start?.nodes ?? [], final: state.nodes)) }
    }

    /// The carried state when it has `batchSize` rows, else zeros.
    public func startStateValues(batchSize: Int) -> [Tensor] {
        if let carriedState, carriedState.first?.shape.first == batchSize { return carriedState }
        return cell.zeroState(batchSize: batchSize).nodes.map(\.value)
    }

    /// Returns the output sequence `[batch, time, hidden]` (or the last output `[batch, hidden]`).
    public func callAsFunction(_ input: Node) -> Node {
        callAsFunction(input, initialState: nil).output
    }

    /// Returns the output and the final state, like Keras' `return_state=True`.
    /// With a `mask` (`[batch, time]`, 1 for a real step), a masked step keeps the previous state and output.
    public func callAsFunction(_ input: Node, initialState: Cell.State?, mask: Tensor? = nil) -> (output: Node, state: Cell.State) {
        if mask == nil, !isDropping(input), input.tape != nil, input.shape.count == 3,
           let length = checkpointing.segmentLength(forSteps: input.shape[1]), length < input.shape[1] {
            return runCheckpointed(input, initialState: initialState, segmentLength: length)
        }
        let (outputs, state) = run(input, initialState: initialState, mask: mask)
        return (returnSequences ? RNN.stack(outputs) : outputs.last!, state)
    }

    /// Forgets the state carried by a stateful layer.
    public func resetStates() { carriedState = nil }

    /// False while stateful: the carried state is read from the previous batch's values (a training loop that
    /// feeds it as a plan input asks ``compilesWithFedState`` instead).
    public var supportsCompilation: Bool { !isStateful && compilesWithFedState }

    /// Whether the recording depends on shapes only once the start state is fed: no dropout mask is drawn.
    public var compilesWithFedState: Bool { dropout == 0 && recurrentDropout == 0 }

    /// Applies the cell's constraints.
    public func applyConstraints() { cell.applyConstraints() }

    /// Stacks `[batch, hidden]` step outputs into `[batch, time, hidden]`.
    static func stack(_ steps: [Node]) -> Node {
        let (batch, hidden) = (steps[0].shape[0], steps[0].shape[1])
        return concatenate(steps, along: 0).reshaped(to: [steps.count, batch, hidden]).transposed(permutation: [1, 0, 2])
    }
}

/// A Keras-style LSTM layer: `LSTM(hiddenSize: 400, inputShape: [pastSteps, 1])`.
public typealias LSTM = RNN<LSTMCell>
/// A Keras-style GRU layer.
public typealias GRU = RNN<GRUCell>
/// A Keras-style fully connected recurrent layer.
public typealias SimpleRNN = RNN<SimpleRNNCell>
/// An LSTM layer with peephole connections.
public typealias PeepholeLSTM = RNN<PeepholeLSTMCell>
/// An independently recurrent layer.
public typealias IndRNN = RNN<IndRNNCell>

extension RNN where Cell == LSTMCell {
    /// Creates an LSTM layer (Keras: `LSTM(units, input_shape=..., return_sequences=...)`).
    public convenience init(hiddenSize: Int, inputShape: [Int]? = nil, returnSequences: Bool = false,
                            goBackwards: Bool = false, isStateful: Bool = false, unitForgetBias: Bool = true,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil) {
        self.init(LSTMCell(hiddenSize: hiddenSize, unitForgetBias: unitForgetBias, seed: seed), returnSequences: returnSequences,
                  goBackwards: goBackwards, isStateful: isStateful, dropout: dropout, recurrentDropout: recurrentDropout,
                  inputShape: inputShape)
    }
}

extension RNN where Cell == GRUCell {
    /// Creates a GRU layer (`resetAfter: true` by default, as in Keras and PyTorch).
    public convenience init(hiddenSize: Int, inputShape: [Int]? = nil, returnSequences: Bool = false,
                            goBackwards: Bool = false, isStateful: Bool = false, resetAfter: Bool = true,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil) {
        self.init(GRUCell(hiddenSize: hiddenSize, resetAfter: resetAfter, seed: seed), returnSequences: returnSequences,
                  goBackwards: goBackwards, isStateful: isStateful, dropout: dropout, recurrentDropout: recurrentDropout,
                  inputShape: inputShape)
    }
}

extension RNN where Cell == SimpleRNNCell {
    /// Creates a fully connected recurrent layer (`tanh` by default, or `relu`).
    public convenience init(hiddenSize: Int, activation: Activation = .tanh, inputShape: [Int]? = nil,
                            returnSequences: Bool = false, goBackwards: Bool = false, isStateful: Bool = false,
                            dropout: Float = 0, recurrentDropout: Float = 0, seed: UInt64? = nil) {
        self.init(SimpleRNNCell(hiddenSize: hiddenSize, activation: activation, seed: seed), returnSequences: returnSequences,
                  goBackwards: goBackwards, isStateful: isStateful, dropout: dropout, recurrentDropout: recurrentDropout,
                  inputShape: inputShape)
    }
}

extension RNN where Cell == PeepholeLSTMCell {
    /// Creates an LSTM layer with peephole connections.
    public convenience init(hiddenSize: Int, inputShape: [Int]? = nil, returnSequences: Bool = false,
                            goBackwards: Bool = false, isStateful: Bool = false, seed: UInt64? = nil) {
        self.init(PeepholeLSTMCell(hiddenSize: hiddenSize, seed: seed), returnSequences: returnSequences,
                  goBackwards: goBackwards, isStateful: isStateful, inputShape: inputShape)
    }
}

extension RNN where Cell == IndRNNCell {
    /// Creates an independently recurrent layer; the recurrent bound defaults to `2^(1/time)` from `inputShape`.
    public convenience init(hiddenSize: Int, inputShape: [Int]? = nil, returnSequences: Bool = false,
                            goBackwards: Bool = false, isStateful: Bool = false, recurrentBound: Float? = nil,
                            seed: UInt64? = nil) {
        self.init(IndRNNCell(hiddenSize: hiddenSize, recurrentBound: recurrentBound,
                             timeSteps: inputShape?.first, seed: seed),
                  returnSequences: returnSequences, goBackwards: goBackwards, isStateful: isStateful,
                  inputShape: inputShape)
    }
}

/// A recurrent layer that can carry its final state into the next call (truncated backpropagation
/// through time and stateful prediction use this).
public protocol StatefulRecurrentLayer: Layer {
    /// Whether the final state of one call is the initial state of the next (until `resetStates()`).
    var isStateful: Bool { get set }
    /// The state the next call starts from while ``isStateful`` (`nil`: zeros), as values (`[h]`, `[h, c]`).
    var carriedState: [Tensor]? { get set }
    /// The values the next stateful call on a batch of `batchSize` rows starts from: the carried state when
    /// it has that many rows, else zeros.
    func startStateValues(batchSize: Int) -> [Tensor]
    /// The start and final state of every taped call while ``isStateful``, oldest first, kept only while it is
    /// not `nil`. A compiled step sets it to empty, records, and declares the start leaves as plan inputs and the
    /// final nodes as plan outputs, so that a replay starts from the current carried state rather than the
    /// traced one; then sets it back to `nil` (eager steps keep nothing).
    var recordedStates: [RecordedState]? { get set }
    /// Whether the layer's recording depends on shapes only once its start state is fed as a plan input.
    var compilesWithFedState: Bool { get }
}

/// The start and final state of one taped call of a stateful recurrent layer.
public struct RecordedState {
    /// The leaves the call started from (the carried state or zeros), empty when the caller gave the initial state.
    public var start: [Node]
    /// The final state's nodes, whose values the layer carries into its next call.
    public var final: [Node]
}

/// A layer that must see a whole sequence at once (it cannot run on consecutive chunks).
public protocol WholeSequenceLayer: Layer {}
