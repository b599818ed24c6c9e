import Graph

/// Repeats a vector along a new time axis: `[batch, features]` → `[batch, count, features]`
/// (the bridge from an encoder's last output to a decoder, as in Keras' addition example).
public final class RepeatVector: Layer {
    /// How many times the input is repeated.
    public let count: Int

    /// Creates a repetition `count` times.
    public init(_ count: Int) { self.count = count }

    /// "RepeatVector".
    public var typeName: String { "RepeatVector" }
    /// None.
    public var parameters: [Parameter] { [] }
    /// `count` must be positive.
    public var invalidSettings: [SettingError] {
        SettingError.unless(count > 0, typeName, "count", count, "must be positive")
    }

    /// `[count, features]` for `[features]`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard shape.count == 1 else { throw ShapeError(layer: typeName, message: "expects input [features], got \(shape)") }
        return [count, shape[0]]
    }

    /// Nothing to build.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
        _ = try outputShape(forInputShape: inputShape)
    }

    /// Returns `count` copies of each row side by side in time.
    public func callAsFunction(_ input: Node) -> Node {
        checkSettings(invalidSettings)
        let (batch, features) = (input.shape[0], input.shape[1])
        let step = input.reshaped(to: [batch, 1, features])
        return concatenate(Array(repeating: step, count: count), along: 1)
    }
}
