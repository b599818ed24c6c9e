import Graph

/// Randomly zeroes a fraction `rate` of its inputs during training and scales the rest by
/// `1 / (1 - rate)` (inverted dropout); the identity in inference (untaped, or a tape not in training).
public final class Dropout: Layer {
    /// The fraction of inputs dropped.
    public let rate: Float
    private var generator: SeededGenerator

    /// Creates a dropout layer with a seeded mask generator.
    public init(rate: Float, seed: UInt64? = nil) {
        self.rate = rate
        self.generator = SeededGenerator(seed: seed ?? Initializers.nextSeed())
    }

    /// "Dropout".
    public var typeName: String { "Dropout" }
    /// `rate` must lie in [0, 1).
    public var invalidSettings: [SettingError] {
        SettingError.unless(rate >= 0 && rate < 1, typeName, "rate", rate, "must lie in [0, 1)")
    }
    /// None.
    public var parameters: [Parameter] { [] }
    /// The input shape.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shape }
    /// Nothing to build; throws the first invalid setting.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
    }
    /// False when it drops anything: every training step draws a new mask.
    public var supportsCompilation: Bool { rate == 0 }

    /// Returns the input with a fresh random mask applied when training.
    public func callAsFunction(_ input: Node) -> Node {
        checkSettings(invalidSettings)
        guard let tape = input.tape, tape.isTraining, rate > 0 else { return input }
        let keep = 1 - rate
        let mask = (0..<input.value.count).map { _ in generator.nextUnitFloat() < keep ? 1 / keep : 0 }
        return input * tape.constant(Tensor(shape: input.shape, scalars: mask))
    }
}
