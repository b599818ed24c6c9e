import Graph

/// The long short-term memory cell (Hochreiter and Schmidhuber, 1997), with Keras' gate order i, f, c, o.
///
/// ```
/// [i, f, g, o] = x W + h U + b
/// i = σ(i)   f = σ(f)   g = tanh(g)   o = σ(o)
/// c' = f ⊙ c + i ⊙ g        h' = o ⊙ tanh(c')
/// ```
/// Parameters (Keras' defaults): `kernel [inputSize, 4·hiddenSize]` glorot uniform,
/// `recurrent_kernel [hiddenSize, 4·hiddenSize]` orthogonal, `bias [4·hiddenSize]` zeros with ones
/// in the forget block (unit forget bias): `4 × hiddenSize × (inputSize + hiddenSize + 1)` scalars.
public final class LSTMCell: RecurrentCell {
    /// The state size.
    public let hiddenSize: Int
    /// Whether the forget gate's bias starts at 1.
    public let unitForgetBias: Bool
    private let seed: UInt64
    private var weights: FusedGateWeights?

    /// Creates a cell; parameters are created when the input size is known.
    public init(hiddenSize: Int, unitForgetBias: Bool = true, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        self.unitForgetBias = unitForgetBias
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "LSTM".
    public var typeName: String { "LSTM" }
    /// kernel, recurrent_kernel, bias.
    public var parameters: [Parameter] { weights.map { [$0.kernel, $0.recurrentKernel, $0.bias] } ?? [] }
    /// The built input size.
    public var inputSize: Int? { weights?.kernel.shape[0] }

    /// Creates the parameters.
    public func build(inputSize: Int) {
        guard weights == nil else { return }
        checkSettings(invalidSettings)
        weights = FusedGateWeights(inputSize: inputSize, hiddenSize: hiddenSize, gates: 4,
                                   bias: FusedGateWeights.lstmBias(hiddenSize: hiddenSize, unitForgetBias: unitForgetBias),
                                   seed: seed)
    }

    /// `x · kernel + bias` for all steps at once: `[n, 4·hiddenSize]`.
    public func projectInput(_ input: Node) -> Node {
        weights!.project(input)
    }

    /// Zeros for `h` and `c`.
    public func zeroState(batchSize: Int) -> LSTMState {
        LSTMState.zeros(batchSize: batchSize, hiddenSize: hiddenSize)
    }

    /// One step.
    public func callAsFunction(_ projectedInput: Node, state: LSTMState) -> (output: Node, state: LSTMState) {
        let gates = projectedInput + state.hidden.matmul(state.hidden.onSameTape(weights!.recurrentKernel))
        let i = sigmoid(gate(gates, 0, size: hiddenSize))
        let f = sigmoid(gate(gates, 1, size: hiddenSize))
        let g = tanh(gate(gates, 2, size: hiddenSize))
        let o = sigmoid(gate(gates, 3, size: hiddenSize))
        let c = f * state.cell + i * g
        let h = o * tanh(c)
        return (h, LSTMState(hidden: h, cell: c))
    }
}
