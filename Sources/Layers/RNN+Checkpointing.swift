import Graph

/// How a recurrent layer trades compute for memory in backpropagation through time.
///
/// Plain backpropagation through time keeps every step's values until the backward pass: memory
/// grows with the sequence length `T`. With checkpointing the layer keeps only the state at the start
/// of each segment of `k` steps and runs each segment again, one at a time, in the backward pass
/// (Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016): memory is about
/// `T/k` states plus one segment's values, smallest near `k = √T`, for one more forward pass of
/// compute. The gradients are those of plain backpropagation through time.
public enum Checkpointing: Sendable, Equatable {
    /// Keep every step (plain backpropagation through time).
    case none
    /// Segments of about `√T` steps.
    case automatic
    /// Segments of the given number of steps (at least 1).
    case every(Int)

    /// The segment length for a sequence of `steps` steps, or `nil` when every step is kept.
    public func segmentLength(forSteps steps: Int) -> Int? {
        switch self {
        case .none:
            return nil
        case .automatic:
            return max(1, Int(Double(steps).squareRoot().rounded()))
        case .every(let length):
            check(length >= 1, "Checkpointing.every(\(length)): the segment length must be at least 1")
            return length
        }
    }
}

/// A layer whose backpropagation through time can keep only every k-th state (``Checkpointing``).
public protocol CheckpointingLayer: Layer {
    /// How many steps' values training keeps (``Checkpointing/none`` keeps them all).
    var checkpointing: Checkpointing { get set }
}

extension RNN: CheckpointingLayer {}

extension RNN {
    /// Runs the sequence in segments of `segmentLength` steps, each recorded as one checkpoint node
    /// (``Tape/checkpoint(_:body:)``) from the segment's input rows and starting state to its final
    /// state (and its outputs when the layer returns sequences, or it is the last segment).
    ///
    /// Each segment projects its own rows inside the checkpoint: projecting all steps up front, as
    /// ``run(_:initialState:)`` does, would keep `[time × batch, projectedSize]` values alive.
    func runCheckpointed(_ input: Node, initialState: Cell.State?, segmentLength: Int) -> (output: Node, state: Cell.State) {
        let (batch, steps, features) = (input.shape[0], input.shape[1], input.shape[2])
        if cell.inputSize == nil { cell.build(inputSize: features) }
        check(cell.inputSize == features, "\(typeName): built for \(cell.inputSize!) features, got \(features)")
        guard let tape = input.tape else { checkFailed("\(typeName): checkpointing needs a taped input") }
        return tape.withScope(scopeName) {
            let start = startState(for: input, initialState: initialState)
            var state = start
            let timeMajor = input.transposed(permutation: [1, 0, 2]).reshaped(to: [steps * batch, features])
            let (cell, goBackwards, returnSequences) = (self.cell, self.goBackwards, self.returnSequences)
            var sequence: [Node] = []
            var last: Node?
            for start in stride(from: 0, to: steps, by: segmentLength) {
                let length = min(segmentLength, steps - start)
                let isLast = start + length == steps
                // Processing positions start..<start+length are these time steps (reversed when going backwards).
                let first = goBackwards ? steps - start - length : start
                let keepsOutputs = returnSequences || isLast
                let rows = timeMajor.slice(along: 0, (first * batch)..<((first + length) * batch))
                let plans = compilesCheckpointedSegments ? checkpointPlans : nil
                // Everything the traced body depends on besides the input shapes, parameter trainability included.
                let variant = "\(length) \(keepsOutputs) \(goBackwards) \(returnSequences) "
                    + cell.parameters.map { $0.isTrainable ? "t" : "f" }.joined()
                let outputs = tape.withScope("t\(first)-\(first + length - 1)") {
                    tape.checkpoint([rows] + state.nodes, compilingWith: plans, variant: variant) { nodes in
                        let projected = cell.projectInput(nodes[0])
                        let width = projected.shape[1]
                        var state = Cell.State(nodes: Array(nodes.dropFirst()))
                        var outputs: [Node] = []
                        for k in 0..<length {
                            let t = goBackwards ? length - 1 - k : k
                            let step = projected.slice(along: 0, (t * batch)..<((t + 1) * batch)).reshaped(to: [batch, width])
                            let (output, next) = cell(step, state: state)
                            if returnSequences || k == length - 1 { outputs.append(output) }
                            state = next
                        }
                        guard keepsOutputs else { return state.nodes }
                        return state.nodes + [returnSequences ? concatenate(outputs, along: 0) : outputs[0]]
                    }
                }
                state = Cell.State(nodes: Array(outputs.prefix(Cell.State.nodeCount)))
                if returnSequences { sequence.append(outputs[Cell.State.nodeCount]) }
                if isLast { last = outputs[Cell.State.nodeCount] }
            }
            noteFinalState(state, startingFrom: initialState == nil ? start : nil, on: input)
            guard returnSequences else { return (last!, state) }
            let hidden = sequence[0].shape[1]
            let stacked = concatenate(sequence, along: 0).reshaped(to: [steps, batch, hidden]).transposed(permutation: [1, 0, 2])
            return (stacked, state)
        }
    }
}
