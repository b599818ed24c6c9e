import Graph

/// Randomly zeroes a fraction `rate` of its inputs during training and scales the rest by
/// `1 / (1 - rate)` (inverted dropout); the identity in inference (untaped, or a tape not in training).
public final class Dropout: Layer {
    /// The fraction of inputs dropped.
    public let rate: Float
    private var generator: SeededGenerator

    /// Creates a dropout layer with a seeded mask generator.
    public init(rate: Float, seed: UInt64? = nil) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate must lie in [0, 1), got \(rate)")
        self.rate = rate
        self.generator = SeededGenerator(seed: seed ?? Initializers.nextSeed())
    }

    /// "Dropout".
    public var typeName: String { "Dropout" }
    /// None.
    public var parameters: [Parameter] { [] }
    /// The input shape.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shape }
    /// Nothing to build.
    public func build(inputShape: [Int]) throws {}

    /// Returns the input with a fresh random mask applied when training.
    public func callAsFunction(_ input: Node) -> Node {
        guard let tape = input.tape, tape.isTraining, rate > 0 else { return input }
        let keep = 1 - rate
        var mask = Tensor.zeros(input.shape)
        mask.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = generator.nextUnitFloat() < keep ? 1 / keep : 0 }
        }
        return input * tape.constant(mask)
    }
}

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

    /// Creates an embedding table.
    public init(vocabularySize: Int, outputSize: Int, inputShape: [Int]? = nil, seed: UInt64? = nil) {
        precondition(vocabularySize > 0 && outputSize > 0, "Embedding: sizes must be positive")
        self.vocabularySize = vocabularySize
        self.outputSize = outputSize
        self.declaredInputShape = inputShape
        table = Parameter("embeddings", Tensor.randomUniform([vocabularySize, outputSize], in: -0.05...0.05,
                                                             seed: seed ?? Initializers.nextSeed()))
    }

    /// "Embedding".
    public var typeName: String { "Embedding" }
    /// The table.
    public var parameters: [Parameter] { [table] }
    /// The input shape plus a vector axis.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] { shape + [outputSize] }
    /// Nothing to build.
    public func build(inputShape: [Int]) throws {}

    /// Returns the rows of the table named by the input's indices (which must be whole numbers in range).
    public func callAsFunction(_ input: Node) -> Node {
        let indices = input.value.scalars.map { value -> Int in
            let index = Int(value)
            precondition(Float(index) == value && index >= 0 && index < vocabularySize,
                         "Embedding: index \(value) is not a whole number in 0..<\(vocabularySize)")
            return index
        }
        return input.lift(table).gatheringRows(indices).reshaped(to: input.shape + [outputSize])
    }
}
