import Foundation
import Graph

/// The state a recurrent cell carries from one time step to the next, as a list of nodes.
public protocol RecurrentState {
    /// The state's nodes in a fixed order (`[h]`, or `[h, c]` for an LSTM).
    var nodes: [Node] { get }
    /// Rebuilds a state from nodes in the order of ``nodes``.
    init(nodes: [Node])
    /// How many nodes a state holds.
    static var nodeCount: Int { get }
}

extension Node: RecurrentState {
    /// A single hidden state: `[self]`.
    public var nodes: [Node] { [self] }
    /// Takes the only node.
    public init(nodes: [Node]) { self = nodes[0] }
    /// One.
    public static var nodeCount: Int { 1 }
}

/// One time step of a recurrent network, written with graph nodes.
///
/// ``RNN`` runs a cell over time. It first calls ``projectInput(_:)`` once on all time steps
/// together (`[batch × time, inputSize]`, one large matrix product for the built-in cells), then
/// ``callAsFunction(_:state:)`` once per step with that step's slice of the projection. A custom
/// cell may leave the projection as the identity and do everything in its step; because it records
/// the same nodes as the built-in cells, it gets backpropagation through time and the same speed.
public protocol RecurrentCell: AnyObject {
    /// The state type: a hidden node, or a struct of nodes.
    associatedtype State: RecurrentState
    /// The cell's kind as Keras prints it (`"LSTM"`).
    var typeName: String { get }
    /// The size of the output at each step (Keras' *units*).
    var hiddenSize: Int { get }
    /// The cell's parameters in a fixed order (empty until built).
    var parameters: [Parameter] { get }
    /// The input size the cell was built for, or `nil` before ``build(inputSize:)``.
    var inputSize: Int? { get }
    /// Creates the parameters for an input size if they do not exist yet.
    func build(inputSize: Int)
    /// Returns the part of the step that depends only on the input, for all steps at once:
    /// `[n, inputSize]` → `[n, projectedSize]`.
    func projectInput(_ input: Node) -> Node
    /// Returns the zero state for a batch (untaped).
    func zeroState(batchSize: Int) -> State
    /// Returns one step's output `[batch, hiddenSize]` and the next state, from the step's projected input.
    func callAsFunction(_ projectedInput: Node, state: State) -> (output: Node, state: State)
    /// Returns one step with recurrent dropout: `recurrentMask` (`[batch, hiddenSize]`, entries 0 or
    /// `1 / (1 - rate)`) scales the previous hidden state where it enters the recurrent product, and only there.
    func callAsFunction(_ projectedInput: Node, state: State, recurrentMask: Node) -> (output: Node, state: State)
    /// Clamps parameters that have a constraint.
    func applyConstraints()
    /// The settings given at creation that the cell cannot run with (empty when all are valid).
    var invalidSettings: [SettingError] { get }
}

extension RecurrentCell {
    /// Scales the hidden state (the state's first node) before the step: right for every cell whose previous
    /// hidden state enters the step only through its recurrent product (SimpleRNN, LSTM, peephole LSTM, IndRNN).
    public func callAsFunction(_ projectedInput: Node, state: State, recurrentMask: Node) -> (output: Node, state: State) {
        var nodes = state.nodes
        nodes[0] = nodes[0] * recurrentMask
        return self(projectedInput, state: State(nodes: nodes))
    }
    /// The identity: the step receives the raw input.
    public func projectInput(_ input: Node) -> Node { input }
    /// No constraints by default.
    public func applyConstraints() {}
    /// `hiddenSize` must be positive.
    public var invalidSettings: [SettingError] {
        SettingError.unless(hiddenSize > 0, typeName, "hiddenSize", hiddenSize, "must be positive")
            + SettingError.unless(fitsInMemory(hiddenSize: hiddenSize), typeName, "hiddenSize", hiddenSize,
                                  "needs a recurrent kernel of at least hiddenSize² floats, more than this machine's memory")
    }
}

/// Whether a `[hiddenSize, hiddenSize]` float matrix, the least a recurrent cell holds, fits in physical memory:
/// checked before anything is allocated, so an absurd size is an error rather than an abort.
func fitsInMemory(hiddenSize: Int) -> Bool {
    let bytes = 4 * Double(hiddenSize) * Double(hiddenSize)
    return bytes <= Double(ProcessInfo.processInfo.physicalMemory)
}

/// The state of an LSTM: the hidden state `h` and the cell state `c`.
public struct LSTMState: RecurrentState {
    /// The hidden state (the output), `[batch, hiddenSize]`.
    public var hidden: Node
    /// The cell state, `[batch, hiddenSize]`.
    public var cell: Node

    /// Creates a state from its two parts.
    public init(hidden: Node, cell: Node) {
        self.hidden = hidden
        self.cell = cell
    }

    /// `[hidden, cell]`.
    public var nodes: [Node] { [hidden, cell] }
    /// Zeros for both parts, `[batch, hiddenSize]` each.
    public static func zeros(batchSize: Int, hiddenSize: Int) -> LSTMState {
        let zeros = Node(Tensor.zeros([batchSize, hiddenSize]))
        return LSTMState(hidden: zeros, cell: zeros)
    }

    /// From `[hidden, cell]`.
    public init(nodes: [Node]) { self.init(hidden: nodes[0], cell: nodes[1]) }
    /// Two.
    public static var nodeCount: Int { 2 }
}

/// The input kernel, recurrent kernel and bias of a cell whose gates are one fused matrix.
///
/// Keras' layout: `kernel` is `[inputSize, gates × hiddenSize]`, `recurrentKernel`
/// `[hiddenSize, gates × hiddenSize]`, gates side by side in the cell's documented order.
struct FusedGateWeights {
    let kernel: Parameter
    let recurrentKernel: Parameter
    let bias: Parameter

    init(inputSize: Int, hiddenSize: Int, gates: Int, bias: Tensor, seed: UInt64) {
        kernel = Parameter("kernel", Initializers.glorotUniform([inputSize, gates * hiddenSize], seed: seed))
        // Keras initialises each gate's recurrent block with its own orthogonal matrix.
        let blocks = (0..<gates).map { Initializers.orthogonal([hiddenSize, hiddenSize], seed: seed &+ 1 &+ UInt64($0)) }
        recurrentKernel = Parameter("recurrent_kernel", Tensor.concatenate(blocks, along: 1))
        self.bias = Parameter("bias", bias)
    }

    /// `x · kernel + bias` for all time steps at once.
    func project(_ input: Node) -> Node {
        input.matmul(input.onSameTape(kernel)) + input.onSameTape(bias)
    }

    /// A `[4·hiddenSize]` LSTM bias: zeros, with ones in the forget block when `unitForgetBias`.
    static func lstmBias(hiddenSize: Int, unitForgetBias: Bool) -> Tensor {
        let forget = Tensor(shape: [hiddenSize], repeating: unitForgetBias ? 1 : 0)
        return Tensor.concatenate([Tensor.zeros([hiddenSize]), forget, Tensor.zeros([2 * hiddenSize])], along: 0)
    }
}

/// Returns gate `k` of `count` equal blocks along the last axis of `[batch, count × size]`.
@inline(__always)
func gate(_ gates: Node, _ k: Int, size: Int) -> Node {
    gates.slice(along: 1, (k * size)..<((k + 1) * size))
}
