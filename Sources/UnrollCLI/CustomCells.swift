// Recurrent cells written the way a user writes one: from graph nodes and the public API only, outside the
// library's cells. `unroll bench` times them (custom-mgu, gru-custom) to check that a user's cell trains as
// fast as a built-in one. Initialisation follows Keras: glorot-uniform input kernels, orthogonal recurrent
// kernels, zero biases.
import Graph
import Layers

/// The minimal gated unit (Zhou et al., 2016):
/// ```
/// f = σ(x W_f + h U_f + b_f)     ĥ = tanh(x W_h + (f ⊙ h) U_h + b_h)     h' = (1 - f) ⊙ h + f ⊙ ĥ
/// ```
/// `kernel [inputSize, 2·hiddenSize]` holds `W_f | W_h`, `bias [2·hiddenSize]` holds `b_f | b_h`.
final class MinimalGatedUnitCell: RecurrentCell {
    let hiddenSize: Int
    private(set) var parameters: [Parameter] = []
    private let seed: UInt64
    var inputSize: Int? { parameters.first?.shape[0] }
    var typeName: String { "MGU" }

    init(hiddenSize: Int, seed: UInt64 = Initializers.nextSeed()) {
        self.hiddenSize = hiddenSize
        self.seed = seed
    }

    func build(inputSize: Int) {
        guard parameters.isEmpty else { return }
        let n = hiddenSize
        parameters = [
            Parameter("kernel", Initializers.glorotUniform([inputSize, 2 * n], seed: seed)),
            Parameter("forget_recurrent_kernel", Initializers.orthogonal([n, n], seed: seed &+ 1)),
            Parameter("candidate_recurrent_kernel", Initializers.orthogonal([n, n], seed: seed &+ 2)),
            Parameter("bias", Tensor.zeros([2 * n])),
        ]
    }

    /// `x W + b` for all time steps in one product.
    func projectInput(_ input: Node) -> Node {
        input.matmul(input.onSameTape(parameters[0])) + input.onSameTape(parameters[3])
    }

    func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    func callAsFunction(_ projected: Node, state h: Node) -> (output: Node, state: Node) {
        let n = hiddenSize
        let f = sigmoid(projected.slice(along: 1, 0..<n) + h.matmul(h.onSameTape(parameters[1])))
        let candidate = tanh(projected.slice(along: 1, n..<(2 * n)) + (f * h).matmul(h.onSameTape(parameters[2])))
        let next = (1 - f) * h + f * candidate
        return (next, next)
    }
}

/// A gated recurrent unit in the "reset after" form (Keras' default, PyTorch's and the built-in ``GRUCell``'s),
/// written as a user's cell:
/// ```
/// z = σ(xW_z + hU_z + b_z + b'_z)      r = σ(xW_r + hU_r + b_r + b'_r)
/// ĥ = tanh(xW_h + b_h + r ⊙ (hU_h + b'_h))      h' = z ⊙ h + (1 - z) ⊙ ĥ
/// ```
/// Kernels side by side in the order z, r, h: `kernel [inputSize, 3·hiddenSize]`,
/// `recurrent_kernel [hiddenSize, 3·hiddenSize]`, `bias [3·hiddenSize]` and `recurrent_bias [3·hiddenSize]`.
final class CustomGRUCell: RecurrentCell {
    let hiddenSize: Int
    private(set) var parameters: [Parameter] = []
    private let seed: UInt64
    var inputSize: Int? { parameters.first?.shape[0] }
    var typeName: String { "CustomGRU" }

    init(hiddenSize: Int, seed: UInt64 = Initializers.nextSeed()) {
        self.hiddenSize = hiddenSize
        self.seed = seed
    }

    func build(inputSize: Int) {
        guard parameters.isEmpty else { return }
        let n = hiddenSize
        let recurrent = (0..<3).map { Initializers.orthogonal([n, n], seed: seed &+ 1 &+ UInt64($0)) }
        parameters = [
            Parameter("kernel", Initializers.glorotUniform([inputSize, 3 * n], seed: seed)),
            Parameter("recurrent_kernel", Tensor.concatenate(recurrent, along: 1)),
            Parameter("bias", Tensor.zeros([3 * n])),
            Parameter("recurrent_bias", Tensor.zeros([3 * n])),
        ]
    }

    func projectInput(_ input: Node) -> Node {
        input.matmul(input.onSameTape(parameters[0])) + input.onSameTape(parameters[2])
    }

    func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    func callAsFunction(_ projected: Node, state h: Node) -> (output: Node, state: Node) {
        let n = hiddenSize
        let recurrent = h.matmul(h.onSameTape(parameters[1])) + h.onSameTape(parameters[3])
        func part(_ gates: Node, _ k: Int) -> Node { gates.slice(along: 1, (k * n)..<((k + 1) * n)) }
        let z = sigmoid(part(projected, 0) + part(recurrent, 0))
        let r = sigmoid(part(projected, 1) + part(recurrent, 1))
        let candidate = tanh(part(projected, 2) + r * part(recurrent, 2))
        let next = z * h + (1 - z) * candidate
        return (next, next)
    }
}
