import Graph

/// A fully connected layer: `y = activation(x · kernel + bias)` on the last axis.
///
/// `kernel` is `[inputSize, outputSize]` (Keras' layout; Keras calls `outputSize` *units*). Inputs of
/// rank 3, `[batch, time, features]`, are mapped step by step.
public final class Dense: Layer {
    /// The number of outputs.
    public let outputSize: Int
    /// The activation applied to the affine map.
    public let activation: Activation
    /// Whether the layer adds a bias.
    public let usesBias: Bool
    /// `[inputSize, outputSize]`, glorot-uniform initialised.
    public private(set) var kernel: Parameter?
    /// `[outputSize]`, zero initialised.
    public private(set) var bias: Parameter?
    /// The input shape given at creation.
    public let declaredInputShape: [Int]?
    private let seed: UInt64

    /// Creates a dense layer; give `inputShape` (without the batch axis) when it is a model's first layer.
    public init(outputSize: Int, activation: Activation = .linear, usesBias: Bool = true,
                inputShape: [Int]? = nil, seed: UInt64? = nil) {
        self.outputSize = outputSize
        self.activation = activation
        self.usesBias = usesBias
        self.declaredInputShape = inputShape
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// Creates a dense layer with its input size known, building it at once.
    public convenience init(inputSize: Int, outputSize: Int, activation: Activation = .linear, seed: UInt64? = nil) {
        self.init(outputSize: outputSize, activation: activation, inputShape: [inputSize], seed: seed)
        do { try build(inputShape: [inputSize]) } catch { checkFailed("\(error)") }
    }

    /// "Dense".
    public var typeName: String { "Dense" }
    /// `outputSize` must be positive.
    public var invalidSettings: [SettingError] {
        SettingError.unless(outputSize > 0, typeName, "outputSize", outputSize, "must be positive")
    }

    /// The kernel, then the bias.
    public var parameters: [Parameter] { [kernel, bias].compactMap { $0 } }

    /// The input shape with its last axis replaced by `outputSize`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard let last = shape.last, last > 0 else {
            throw ShapeError(layer: typeName, message: "expects an input with a feature axis, got \(shape)")
        }
        if let kernel, kernel.shape[0] != last {
            throw ShapeError(layer: typeName, message: "built for \(kernel.shape[0]) input features, got \(last)")
        }
        return Array(shape.dropLast()) + [outputSize]
    }

    /// Creates the kernel and bias for the input's feature count.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
        _ = try outputShape(forInputShape: inputShape)
        guard kernel == nil, let inputSize = inputShape.last else { return }
        kernel = Parameter("kernel", Initializers.glorotUniform([inputSize, outputSize], seed: seed))
        if usesBias { bias = Parameter("bias", Tensor.zeros([outputSize])) }
    }

    /// Returns `activation(x · kernel + bias)`.
    public func callAsFunction(_ input: Node) -> Node {
        guard let kernel else { checkFailed("Dense: call build(inputShape:) before using the layer") }
        let features = input.shape.last!
        let flat = input.shape.count == 2 ? input : input.reshaped(to: [-1, features])
        var y = flat.matmul(input.onSameTape(kernel))
        if let bias { y = y + input.onSameTape(bias) }
        y = activation(y)
        return input.shape.count == 2 ? y : y.reshaped(to: Array(input.shape.dropLast()) + [outputSize])
    }
}
