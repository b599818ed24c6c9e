import Graph

/// The gated recurrent unit (Cho et al., 2014), with Keras' gate order z, r, h.
///
/// With `resetAfter` (the default, as in Keras and PyTorch; cuDNN-compatible) the reset gate is
/// applied after the recurrent product, and input and recurrent biases are separate:
/// ```
/// z = σ(xW_z + hU_z + b_z + b'_z)      r = σ(xW_r + hU_r + b_r + b'_r)
/// ĥ = tanh(xW_h + b_h + r ⊙ (hU_h + b'_h))
/// h' = z ⊙ h + (1 - z) ⊙ ĥ
/// ```
/// `bias` is then `[2, 3·hiddenSize]` (input row, recurrent row). The classic form (`resetAfter: false`)
/// has one `bias [3·hiddenSize]` and `ĥ = tanh(xW_h + (r ⊙ h) U_h + b_h)`.
/// Scalars: `3·hiddenSize·(inputSize + hiddenSize) + 3·hiddenSize·(resetAfter ? 2 : 1)`.
public final class GRUCell: RecurrentCell {
    /// The state size.
    public let hiddenSize: Int
    /// Whether the reset gate applies after the recurrent product.
    public let resetAfter: Bool
    private let seed: UInt64
    private var weights: FusedGateWeights?

    /// Creates a cell; parameters are created when the input size is known.
    public init(hiddenSize: Int, resetAfter: Bool = true, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        self.resetAfter = resetAfter
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "GRU".
    public var typeName: String { "GRU" }
    /// kernel, recurrent_kernel, bias.
    public var parameters: [Parameter] { weights.map { [$0.kernel, $0.recurrentKernel, $0.bias] } ?? [] }
    /// The built input size.
    public var inputSize: Int? { weights?.kernel.shape[0] }

    /// Creates the parameters.
    public func build(inputSize: Int) {
        guard weights == nil else { return }
        checkSettings(invalidSettings)
        let bias = Tensor.zeros(resetAfter ? [2, 3 * hiddenSize] : [3 * hiddenSize])
        weights = FusedGateWeights(inputSize: inputSize, hiddenSize: hiddenSize, gates: 3, bias: bias, seed: seed)
    }

    /// `x · kernel + input bias` for all steps at once: `[n, 3·hiddenSize]`.
    public func projectInput(_ input: Node) -> Node {
        let bias = input.onSameTape(weights!.bias)
        let inputBias = resetAfter ? bias.slice(along: 0, 0..<1).reshaped(to: [3 * hiddenSize]) : bias
        return input.matmul(input.onSameTape(weights!.kernel)) + inputBias
    }

    /// Zeros `[batch, hiddenSize]`.
    public func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    /// One step.
    public func callAsFunction(_ projectedInput: Node, state h: Node) -> (output: Node, state: Node) {
        step(projectedInput, h, recurrent: h)
    }

    /// One step whose recurrent products read `h ⊙ recurrentMask`; the update `z ⊙ h + (1 - z) ⊙ candidate`
    /// keeps the undropped `h`, as Keras' GRU does.
    public func callAsFunction(_ projectedInput: Node, state h: Node, recurrentMask: Node) -> (output: Node, state: Node) {
        step(projectedInput, h, recurrent: h * recurrentMask)
    }

    private func step(_ projectedInput: Node, _ h: Node, recurrent hr: Node) -> (output: Node, state: Node) {
        let u = h.onSameTape(weights!.recurrentKernel)
        let n = hiddenSize
        let hNext: Node
        if resetAfter {
            let recurrentBias = h.onSameTape(weights!.bias).slice(along: 0, 1..<2).reshaped(to: [3 * n])
            let recurrent = hr.matmul(u) + recurrentBias
            let z = sigmoid(gate(projectedInput, 0, size: n) + gate(recurrent, 0, size: n))
            let r = sigmoid(gate(projectedInput, 1, size: n) + gate(recurrent, 1, size: n))
            let candidate = tanh(gate(projectedInput, 2, size: n) + r * gate(recurrent, 2, size: n))
            hNext = z * h + (1 - z) * candidate
        } else {
            let zr = hr.matmul(u.slice(along: 1, 0..<(2 * n)))
            let z = sigmoid(gate(projectedInput, 0, size: n) + gate(zr, 0, size: n))
            let r = sigmoid(gate(projectedInput, 1, size: n) + gate(zr, 1, size: n))
            let candidate = tanh(gate(projectedInput, 2, size: n) + (r * hr).matmul(u.slice(along: 1, (2 * n)..<(3 * n))))
            hNext = z * h + (1 - z) * candidate
        }
        return (hNext, hNext)
    }
}
