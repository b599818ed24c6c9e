import Graph

/// Recurrent layers in functional models: an initial state from other tensors, and the final state
/// as tensors (Keras' `initial_state=` and `return_state=True`).
///
/// ```swift
/// let (_, h, c) = LSTM(hiddenSize: 128)(encoderInputs)            // output, then the state
/// let decoded = LSTM(hiddenSize: 128, returnSequences: true)(decoderInputs, initialState: [h, c])
/// ```
/// Destructuring the call into a tuple is what asks for the state, so no flag is needed.
extension RNN {
    /// Calls the layer starting from `initialState` (one tensor `[hiddenSize]` per state node: `[h]`, or
    /// `[h, c]` for an LSTM), and returns the output and the final state's tensors.
    public func callReturningState(_ input: SymbolicTensor, initialState: [SymbolicTensor]? = nil)
        -> (output: SymbolicTensor, state: [SymbolicTensor]) {
        let count = Cell.State.nodeCount
        let tensors = LayerCall.record(self, inputs: [input] + (initialState ?? []), outputCount: 1 + count, shapes: {
            if let problem = invalidSettings.first { throw problem }
            try build(inputShape: input.shape)
            let output = try outputShape(forInputShape: input.shape)
            if let initialState {
                guard initialState.count == count else {
                    throw ShapeError(layer: typeName, message: "expects an initial state of \(count) tensors, got \(initialState.count)")
                }
                for state in initialState where state.shape != [cell.hiddenSize] {
                    throw ShapeError(layer: typeName, message: "expects initial state tensors [\(cell.hiddenSize)], got \(state.shape)")
                }
            }
            return [output] + Array(repeating: [cell.hiddenSize], count: count)
        }, function: { [self] nodes, masks in
            let start = nodes.count > 1 ? Cell.State(nodes: Array(nodes.dropFirst())) : nil
            let (output, state) = self(nodes[0], initialState: start, mask: masks[0])
            return ([output] + state.nodes, [returnSequences ? masks[0] : nil] + state.nodes.map { _ in nil })
        })
        return (tensors[0], Array(tensors.dropFirst()))
    }

    /// Calls the layer starting from `initialState` and returns its output (Keras' `initial_state=`).
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor]) -> SymbolicTensor {
        callReturningState(input, initialState: initialState).output
    }
}

extension RNN where Cell.State == LSTMState {
    /// Returns the output, the final hidden state `h` and the final cell state `c`:
    /// `let (output, h, c) = lstm(x)`.
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor]? = nil)
        -> (SymbolicTensor, SymbolicTensor, SymbolicTensor) {
        let (output, state) = callReturningState(input, initialState: initialState)
        return (output, state[0], state[1])
    }
}

extension RNN where Cell.State == Node {
    /// Returns the output and the final hidden state: `let (output, h) = gru(x)`.
    public func callAsFunction(_ input: SymbolicTensor, initialState: [SymbolicTensor]? = nil)
        -> (SymbolicTensor, SymbolicTensor) {
        let (output, state) = callReturningState(input, initialState: initialState)
        return (output, state[0])
    }
}
