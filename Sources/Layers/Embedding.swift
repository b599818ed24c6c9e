import Graph

/// Maps integer indices (stored as floats, `[batch, time]`) to learned vectors (`[batch, time, outputSize]`).
public final class Embedding: Layer {
    /// The number of distinct indices.
    public let vocabularySize: Int
    /// The length of each vector.
    public let outputSize: Int
    /// `[vocabularySize, outputSize]`, uniform in ±0.05 as in Keras.
    public private(set) var table: Parameter
    /// The input shape given at creation.
    public let declaredInputShape: [Int]?
    /// Whether index 0 is padding: in a functional model the output then carries a mask (Keras' `mask_zero`).
    public let maskZero: Bool

    /// Creates an embedding table.
    public init(vocabularySize: Int, outputSize: Int, maskZero: Bool = false, inputShape: [Int]? = nil, seed: UInt64? = nil) {
        self.maskZero = maskZero
        self.vocabularySize = vocabularySize
        self.outputSize = outputSize
        self.declaredInputShape = inputShape
        // An invalid size gets an empty table, so that `compile` can report it instead of an allocation trapping.
        let shape = vocabularySize > 0 && outputSize > 0 ? [vocabularySize, outputSize] : [0, 0]
        table = Parameter("embeddings", Tensor.randomUniform(shape, in: -0.05...0.05, seed: seed ?? Initializers.nextSeed()))
    }

    /// "Embedding".
    public var typeName: String { "Embedding" }
    /// `vocabularySize` and `outputSize` must be positive.
    public var invalidSettings: [SettingError] {
        SettingError.unless(vocabularySize > 0, typeName, "vocabularySize", vocabularySize, "must be positive")
            + SettingError.unless(outputSize > 0, typeName, "outputSize", outputSize, "must be positive")
    }
    /// The table.
    public var parameters: [Parameter] { [table] }
    /// The input shape plus a vector axis.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shape + [outputSize] }
    /// Nothing to build; throws the first invalid setting.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
    }
    /// False: the rows gathered are read from the input's values.
    public var supportsCompilation: Bool { false }

    /// Returns the rows of the table named by the input's indices (which must be whole numbers in range).
    public func callAsFunction(_ input: Node) -> Node {
        checkSettings(invalidSettings)
        let indices = input.value.scalars.map { value -> Int in
            let index = Int(value)
            check(Float(index) == value && index >= 0 && index < vocabularySize,
                         "Embedding: index \(value) is not a whole number in 0..<\(vocabularySize)")
            return index
        }
        return input.onSameTape(table).gatheringRows(indices).reshaped(to: input.shape + [outputSize])
    }
}
