/// A named, trainable tensor that lives across tapes and receives gradients.
///
/// Layers own their parameters; each forward pass on a ``Tape`` records a parameter once, so a
/// weight used at every time step receives the sum of its per-step gradients. Gradients
/// accumulate across backward passes until ``zeroGradient()`` is called.
public final class Parameter {
    /// The name used in summaries and weight files (`"kernel"`, `"recurrent_kernel"`, `"bias"`).
    public let name: String
    /// The current value.
    public var value: Tensor
    /// The accumulated gradient, or `nil` when it is zero.
    public var gradient: Tensor?
    /// Whether optimizers update this parameter (an echo state network's reservoir is not trainable).
    public var isTrainable: Bool

    /// Creates a parameter with an initial value.
    public init(_ name: String, _ value: Tensor, isTrainable: Bool = true) {
        self.name = name
        self.value = value
        self.isTrainable = isTrainable
    }

    /// The shape of the value.
    public var shape: [Int] { value.shape }

    /// Clears the accumulated gradient.
    public func zeroGradient() { gradient = nil }

    /// Adds a gradient to the accumulated one.
    public func accumulateGradient(_ delta: Tensor) {
        check(delta.shape == value.shape,
                     "Parameter \(name): gradient shape \(delta.shape) differs from value shape \(value.shape)")
        if gradient == nil { gradient = delta } else { gradient!.add(delta) }
    }
}
