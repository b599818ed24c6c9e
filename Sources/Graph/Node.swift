/// A value computed by an operation, and where it was recorded.
///
/// Operations on nodes (`+`, `matmul`, `tanh`, `slice`, ...) compute their value at once. When an
/// input lives on a ``Tape`` the operation is recorded there for ``Tape/backward(from:seed:)``;
/// when no input does, nothing is recorded and intermediate values are freed as soon as they are
/// unused (inference in flat memory).
public struct Node {
    /// The computed value.
    public let value: Tensor
    /// The tape this node is recorded on, or `nil` for an untaped value.
    public let tape: Tape?
    /// The node's position on its tape (meaningless when untaped).
    public let index: Int
    /// The tape's generation when this node was recorded (a tape that is cleared starts a new one).
    let generation: Int

    init(value: Tensor, tape: Tape?, index: Int, generation: Int = 0) {
        self.value = value
        self.tape = tape
        self.index = index
        self.generation = generation
    }

    /// Creates an untaped node (inference, or a constant that joins a tape when combined with taped nodes).
    public init(_ value: Tensor) {
        self.init(value: value, tape: nil, index: -1)
    }

    /// The shape of the value.
    public var shape: [Int] { value.shape }

    /// Returns `parameter` as a node on the same tape as this node (recorded once per tape), or an untaped
    /// node of its value when this node is untaped.
    ///
    /// Layers call this so that the same code records when training and runs untaped in inference:
    /// `input.matmul(input.onSameTape(kernel))`.
    public func onSameTape(_ parameter: Parameter) -> Node {
        tape?.parameter(parameter) ?? Node(parameter.value)
    }

    /// Returns `value` as a constant on the same tape as this node, or an untaped node when this node is untaped.
    public func onSameTape(_ value: Tensor) -> Node {
        tape?.constant(value) ?? Node(value)
    }

    /// Records a one-input `op` (the common case, without building an array of nodes).
    static func make(_ op: Op, _ input: Node, _ value: Tensor) -> Node {
        guard let tape = input.tape else { return Node(value) }
        return tape.record(op, input, nil, value: value)
    }

    /// Records a two-input `op` on the tape of the first taped input, or returns an untaped node.
    static func make(_ op: Op, _ a: Node, _ b: Node, _ value: Tensor) -> Node {
        guard let tape = a.tape ?? b.tape else { return Node(value) }
        return tape.record(op, a, b, value: value)
    }

    /// Records `op` on the tape of the first taped input, or returns an untaped node.
    static func make(_ op: Op, _ inputs: [Node], _ value: Tensor) -> Node {
        for input in inputs {
            if let tape = input.tape { return tape.record(op, inputs, value: value) }
        }
        return Node(value)
    }
}

/// Runs `body` with the nodes it records labelled by `name` (when `node` is on a tape).
public func withScope<R>(_ name: String, on node: Node, _ body: () throws -> R) rethrows -> R {
    if let tape = node.tape { return try tape.withScope(name, body) }
    return try body()
}
