import Graph

/// Applies a layer to every time step: `[batch, time, features]` → `[batch, time, ...]` (Keras'
/// `TimeDistributed`). The time axis is folded into the batch, so one call covers all steps.
public final class TimeDistributed: Layer {
    /// The layer applied at each step.
    public let layer: any Layer

    /// Wraps a layer.
    public init(_ layer: any Layer) { self.layer = layer }

    /// "TimeDistributed".
    public var typeName: String { "TimeDistributed" }
    /// The wrapped layer's parameters.
    public var parameters: [Parameter] { layer.parameters }
    /// The wrapped layer's settings.
    public var invalidSettings: [SettingError] { layer.invalidSettings }

    /// `[time] + ` the wrapped layer's output shape for one step.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard shape.count >= 2 else { throw ShapeError(layer: typeName, message: "expects input [time, ...], got \(shape)") }
        return [shape[0]] + (try layer.outputShape(forInputShape: Array(shape.dropFirst())))
    }

    /// Builds the wrapped layer for one step's shape.
    public func build(inputShape: [Int]) throws {
        _ = try outputShape(forInputShape: inputShape)
        try layer.build(inputShape: Array(inputShape.dropFirst()))
    }

    /// Returns the wrapped layer's output at every step.
    public func callAsFunction(_ input: Node) -> Node {
        let (batch, time) = (input.shape[0], input.shape[1])
        let folded = layer(input.reshaped(to: [batch * time] + input.shape.dropFirst(2)))
        return folded.reshaped(to: [batch, time] + folded.shape.dropFirst())
    }

    /// Clamps the wrapped layer's parameters.
    public func applyConstraints() { layer.applyConstraints() }
}
