import Graph

/// The Elman cell: `h' = activation(x · kernel + h · recurrentKernel + bias)`.
///
/// ```
/// h' = tanh(x W + h U + b)
/// ```
/// Parameters: `kernel [inputSize, hiddenSize]` (glorot uniform), `recurrent_kernel [hiddenSize, hiddenSize]`
/// (orthogonal), `bias [hiddenSize]` (zeros): `hiddenSize × (inputSize + hiddenSize) + hiddenSize` scalars.
public final class SimpleRNNCell: RecurrentCell {
    /// The state size.
    public let hiddenSize: Int
    /// `tanh` (default) or `relu`.
    public let activation: Activation
    private let seed: UInt64
    private var weights: FusedGateWeights?

    /// Creates a cell; parameters are created when the input size is known.
    public init(hiddenSize: Int, activation: Activation = .tanh, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        self.activation = activation
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "SimpleRNN".
    public var typeName: String { "SimpleRNN" }
    /// kernel, recurrent_kernel, bias.
    public var parameters: [Parameter] { weights.map { [$0.kernel, $0.recurrentKernel, $0.bias] } ?? [] }
    /// The built input size.
    public var inputSize: Int? { weights?.kernel.shape[0] }

    /// Creates the parameters.
    public func build(inputSize: Int) {
        guard weights == nil else { return }
        checkSettings(invalidSettings)
        weights = FusedGateWeights(inputSize: inputSize, hiddenSize: hiddenSize, gates: 1,
                                   bias: Tensor.zeros([hiddenSize]), seed: seed)
    }

    /// `x · kernel + bias` for all steps at once.
    public func projectInput(_ input: Node) -> Node {
        weights!.project(input)
    }

    /// Zeros `[batch, hiddenSize]`.
    public func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    /// One step.
    public func callAsFunction(_ projectedInput: Node, state: Node) -> (output: Node, state: Node) {
        let h = activation(projectedInput + state.matmul(state.onSameTape(weights!.recurrentKernel)))
        return (h, h)
    }
}
