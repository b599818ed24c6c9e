import Graph

/// A layer that makes, reads or passes on a mask: `[batch, time]`, 1 for a real step and 0 for padding.
///
/// In a functional model the mask travels with the tensor it belongs to (Keras' `_keras_mask`):
/// `Masking` and `Embedding(maskZero: true)` make one, recurrent layers honour it, layers that keep the time
/// axis pass it on, and the losses of a `Model` leave masked steps out.
public protocol MaskAwareLayer: Layer {
    /// Returns the output for an input whose steps are real where `mask` is 1.
    func callAsFunction(_ input: Node, mask: Tensor?) -> Node
    /// Returns the mask of the output (Keras' `compute_mask`), or `nil` when it has none.
    func outputMask(for input: Node, mask: Tensor?) -> Tensor?
}

/// Marks as padding every time step whose features all equal `maskValue`, and zeroes those steps
/// (Keras' `Masking`): `[batch, time, features]` in and out, with a mask `[batch, time]`.
public final class Masking: MaskAwareLayer {
    /// The value that marks a padded step.
    public let maskValue: Float

    /// Creates a masking layer.
    public init(maskValue: Float = 0) { self.maskValue = maskValue }

    /// "Masking".
    public var typeName: String { "Masking" }
    /// None.
    public var parameters: [Parameter] { [] }

    /// The input shape, which must be `[time, features]`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard shape.count == 2 else { throw ShapeError(layer: typeName, message: "expects input [time, features], got \(shape)") }
        return shape
    }

    /// Nothing to build.
    public func build(inputShape: [Int]) throws { _ = try outputShape(forInputShape: inputShape) }

    /// False: the mask is read from the input's values, which a compiled plan would freeze.
    public var supportsCompilation: Bool { false }

    /// Returns 1 for every step with a feature other than `maskValue`, else 0: `[batch, time]`.
    public func mask(of input: Node) -> Tensor {
        let (batch, time, features) = (input.shape[0], input.shape[1], input.shape[2])
        let values = input.value.scalars
        let mask = (0..<(batch * time)).map { row in
            values[(row * features)..<((row + 1) * features)].contains { $0 != maskValue } ? Float(1) : 0
        }
        return Tensor(shape: [batch, time], scalars: mask)
    }

    /// Returns the input with its padded steps zeroed.
    public func callAsFunction(_ input: Node) -> Node {
        input * input.onSameTape(mask(of: input).reshaped(to: [input.shape[0], input.shape[1], 1]))
    }

    /// The same as without a mask: the layer makes its own.
    public func callAsFunction(_ input: Node, mask: Tensor?) -> Node { self(input) }

    /// The padded steps of this input.
    public func outputMask(for input: Node, mask: Tensor?) -> Tensor? { self.mask(of: input) }
}

extension Embedding: MaskAwareLayer {
    /// The embedding ignores an incoming mask.
    public func callAsFunction(_ input: Node, mask: Tensor?) -> Node { self(input) }

    /// With `maskZero`, index 0 is padding: the mask is 1 where the index is not 0 (`[batch, time]`).
    public func outputMask(for input: Node, mask: Tensor?) -> Tensor? {
        guard maskZero, input.shape.count == 2 else { return mask }
        return Tensor(shape: input.shape, scalars: input.value.scalars.map { $0 == 0 ? 0 : 1 })
    }
}

extension RNN: MaskAwareLayer {
    /// Runs the sequence honouring the mask: a masked step keeps the previous state and output.
    public func callAsFunction(_ input: Node, mask: Tensor?) -> Node {
        callAsFunction(input, initialState: nil, mask: mask).output
    }

    /// The mask, when the output keeps the time axis (`returnSequences`).
    public func outputMask(for input: Node, mask: Tensor?) -> Tensor? { returnSequences ? mask : nil }

    /// Returns `(output, state)` where step `t` of `mask` is 1, else the previous ones (Keras' masked RNN step):
    /// `m ⊙ new + (1 - m) ⊙ previous`, exact for m in {0, 1}.
    static func holding(_ step: (output: Node, state: Cell.State), previous: (output: Node, state: Cell.State),
                        mask: Tensor, at t: Int, on input: Node) -> (Node, Cell.State) {
        let batch = mask.shape[0]
        let column = Tensor(shape: [batch, 1], scalars: (0..<batch).map { mask.scalars[$0 * mask.shape[1] + t] })
        let keep = input.onSameTape(column), drop = input.onSameTape(column.affine(scale: -1, shift: 1))
        let blend = { (new: Node, old: Node) in keep * new + drop * old }
        return (blend(step.output, previous.output),
                Cell.State(nodes: zip(step.state.nodes, previous.state.nodes).map(blend)))
    }
}

extension Bidirectional: MaskAwareLayer {
    /// Runs both directions honouring the mask. Each direction holds its state through masked steps, so the
    /// backward one, starting from the padded end, meets each sequence's real steps last to first: it reverses
    /// every sequence within its true length, as Keras' does.
    public func callAsFunction(_ input: Node, mask: Tensor?) -> Node {
        guard let mask else { return self(input) }
        let ahead = forward.run(input, mask: mask).outputs
        let behind = backward.run(input, mask: mask).outputs
        if forward.returnSequences {
            return merge(RNN<Cell>.stack(ahead), RNN<Cell>.stack(behind.reversed()), axis: 2)
        }
        return merge(ahead.last!, behind.last!, axis: 1)
    }

    /// The mask, when the output keeps the time axis (`returnSequences`).
    public func outputMask(for input: Node, mask: Tensor?) -> Tensor? { forward.returnSequences ? mask : nil }
}
