import Graph

/// An LSTM cell with diagonal peephole connections (Gers and Schmidhuber, 2000): the input and forget
/// gates see the previous cell state, the output gate sees the new one.
///
/// ```
/// i = σ(xWᵢ + hUᵢ + pᵢ ⊙ c + bᵢ)    f = σ(xW_f + hU_f + p_f ⊙ c + b_f)    g = tanh(xW_g + hU_g + b_g)
/// c' = f ⊙ c + i ⊙ g
/// o = σ(xWₒ + hUₒ + pₒ ⊙ c' + bₒ)   h' = o ⊙ tanh(c')
/// ```
/// Parameters: those of ``LSTMCell`` plus three `[hiddenSize]` peephole vectors
/// (`input_gate_peephole_weights`, `forget_gate_peephole_weights`, `output_gate_peephole_weights`,
/// glorot uniform as in Keras' `PeepholeLSTMCell`).
public final class PeepholeLSTMCell: RecurrentCell {
    /// The state size.
    public let hiddenSize: Int
    private let seed: UInt64
    private var weights: FusedGateWeights?
    private var peepholes: [Parameter] = []

    /// Creates a cell; parameters are created when the input size is known.
    public init(hiddenSize: Int, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "PeepholeLSTM".
    public var typeName: String { "PeepholeLSTM" }
    /// kernel, recurrent_kernel, bias, then the input, forget and output peepholes.
    public var parameters: [Parameter] {
        (weights.map { [$0.kernel, $0.recurrentKernel, $0.bias] } ?? []) + peepholes
    }
    /// The built input size.
    public var inputSize: Int? { weights?.kernel.shape[0] }

    /// Creates the parameters.
    public func build(inputSize: Int) {
        guard weights == nil else { return }
        checkSettings(invalidSettings)
        weights = FusedGateWeights(inputSize: inputSize, hiddenSize: hiddenSize, gates: 4,
                                   bias: FusedGateWeights.lstmBias(hiddenSize: hiddenSize, unitForgetBias: true), seed: seed)
        let limit = (6 / Float(2 * hiddenSize)).squareRoot()
        peepholes = ["input", "forget", "output"].enumerated().map { k, name in
            Parameter("\(name)_gate_peephole_weights",
                      Tensor.randomUniform([hiddenSize], in: -limit...limit, seed: seed &+ 100 &+ UInt64(k)))
        }
    }

    /// `x · kernel + bias` for all steps at once.
    public func projectInput(_ input: Node) -> Node {
        weights!.project(input)
    }

    /// Zeros for `h` and `c`.
    public func zeroState(batchSize: Int) -> LSTMState {
        LSTMState.zeros(batchSize: batchSize, hiddenSize: hiddenSize)
    }

    /// One step.
    public func callAsFunction(_ projectedInput: Node, state: LSTMState) -> (output: Node, state: LSTMState) {
        func onTape(_ parameter: Parameter) -> Node { state.hidden.onSameTape(parameter) }
        let gates = projectedInput + state.hidden.matmul(onTape(weights!.recurrentKernel))
        let i = sigmoid(gate(gates, 0, size: hiddenSize) + onTape(peepholes[0]) * state.cell)
        let f = sigmoid(gate(gates, 1, size: hiddenSize) + onTape(peepholes[1]) * state.cell)
        let g = tanh(gate(gates, 2, size: hiddenSize))
        let c = f * state.cell + i * g
        let o = sigmoid(gate(gates, 3, size: hiddenSize) + onTape(peepholes[2]) * c)
        let h = o * tanh(c)
        return (h, LSTMState(hidden: h, cell: c))
    }
}
