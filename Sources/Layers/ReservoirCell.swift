import Graph

/// The reservoir of an echo state network as a recurrent cell: a fixed, random leaky-integrator tanh network.
///
/// ```
/// h' = (1 − a) ⊙ h + a · tanh(x W_in + b + h W)
/// ```
/// `a` is ``leakRate``. `W_in` `[inputSize, hiddenSize]` is uniform in `±inputScaling`; `W`
/// `[hiddenSize, hiddenSize]` is sparse (each entry nonzero with probability ``connectivity``, uniform in
/// `±1`), then rescaled so that its spectral radius is ``spectralRadius``; `b` is uniform in
/// `±0.1 · inputScaling`, which breaks the symmetry `h → −h` of a bias-free tanh reservoir. The three are
/// non-trainable parameters (`kernel`, `recurrent_kernel`, `bias`). The recurrent product is one
/// ``SparseMatrix`` product per step (it skips the zeros when that is faster).
///
/// ``RNN`` runs it like any cell; ``EchoStateNetwork`` adds the trained readout.
public final class ReservoirCell: RecurrentCell {
    /// The state is the hidden node.
    public typealias State = Node
    /// The number of reservoir units (Keras' *units*).
    public let hiddenSize: Int
    /// The spectral radius the recurrent kernel is rescaled to.
    public let spectralRadius: Float
    /// The leak rate `a`: 1 replaces the state at every step, smaller values smooth it.
    public let leakRate: Float
    /// The half-width of the uniform input kernel (and ten times that of the bias).
    public let inputScaling: Float
    /// The probability that an entry of the recurrent kernel is nonzero.
    public let connectivity: Float
    /// `W_in`, `[inputSize, hiddenSize]`, not trainable.
    public private(set) var inputKernel: Parameter?
    /// `W`, `[hiddenSize, hiddenSize]`, not trainable.
    public private(set) var recurrentKernel: Parameter?
    /// `b`, `[hiddenSize]`, not trainable.
    public private(set) var bias: Parameter?
    /// The sparse form of ``recurrentKernel``'s value, refreshed once per sequence when the value changed
    /// (weights loaded from a file replace it).
    private var sparseRecurrentKernel: SparseMatrix?
    private let seed: UInt64

    /// Creates a reservoir; its weights are drawn from `seed` when it is built.
    public init(hiddenSize: Int, spectralRadius: Float = 0.9, leakRate: Float = 1, inputScaling: Float = 1,
                connectivity: Float = 0.1, seed: UInt64? = nil) {
        self.hiddenSize = hiddenSize
        self.spectralRadius = spectralRadius
        self.leakRate = leakRate
        self.inputScaling = inputScaling
        self.connectivity = connectivity
        self.seed = seed ?? Initializers.nextSeed()
    }

    /// "Reservoir".
    public var typeName: String { "Reservoir" }
    /// Input kernel, recurrent kernel, bias.
    public var parameters: [Parameter] { [inputKernel, recurrentKernel, bias].compactMap { $0 } }
    /// The input size the reservoir was drawn for, or `nil` before it is built.
    public var inputSize: Int? { inputKernel?.shape[0] }

    /// Positive `hiddenSize`, `spectralRadius` ≥ 0, `leakRate` in [0, 1], `inputScaling` ≥ 0,
    /// `connectivity` in (0, 1], each named after the layer `layer`.
    func invalidSettings(layer: String) -> [SettingError] {
        SettingError.unless(hiddenSize > 0, layer, layer == typeName ? "hiddenSize" : "reservoirSize", hiddenSize,
                            "must be positive")
            + SettingError.unless(spectralRadius >= 0, layer, "spectralRadius", spectralRadius, "must not be negative")
            + SettingError.unless((0...1).contains(leakRate), layer, "leakRate", leakRate, "must lie in [0, 1]")
            + SettingError.unless(inputScaling >= 0, layer, "inputScaling", inputScaling, "must not be negative")
            + SettingError.unless(connectivity > 0 && connectivity <= 1, layer, "connectivity", connectivity,
                                  "must lie in (0, 1]")
    }

    /// The settings out of range; see the initializer.
    public var invalidSettings: [SettingError] { invalidSettings(layer: typeName) }

    /// Draws the reservoir for an input size, once.
    public func build(inputSize: Int) {
        guard inputKernel == nil else { return }
        checkSettings(invalidSettings)
        let units = hiddenSize
        inputKernel = Parameter("kernel", Tensor.randomUniform([inputSize, units], in: -inputScaling...inputScaling,
                                                              seed: seed), isTrainable: false)
        var generator = SeededGenerator(seed: seed &+ 1)
        let scalars = (0..<(units * units)).map { _ in
            generator.nextUnitFloat() < connectivity ? generator.nextFloat(in: -1...1) : 0
        }
        var recurrent = Tensor(shape: [units, units], scalars: scalars)
        let radius = SparseMatrix(recurrent).estimatedSpectralRadius()
        // A reservoir too sparse to have a cycle is nilpotent (radius 0): it cannot be rescaled, so it stays as drawn.
        if radius > 0 { recurrent = recurrent * (spectralRadius / radius) }
        recurrentKernel = Parameter("recurrent_kernel", recurrent, isTrainable: false)
        let biasScale = 0.1 * inputScaling
        bias = Parameter("bias", Tensor.randomUniform([units], in: -biasScale...biasScale, seed: seed &+ 2),
                         isTrainable: false)
    }

    /// `x W_in + b` for all steps at once; also brings the sparse form of `W` up to date for this sequence.
    public func projectInput(_ input: Node) -> Node {
        let recurrent = recurrentKernel!.value
        if sparseRecurrentKernel?.dense != recurrent { sparseRecurrentKernel = SparseMatrix(recurrent) }
        return input.matmul(input.onSameTape(inputKernel!)) + input.onSameTape(bias!)
    }

    /// Zeros, `[batch, hiddenSize]`.
    public func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    /// One leaky step from the projected input.
    public func callAsFunction(_ projectedInput: Node, state: Node) -> (output: Node, state: Node) {
        let drive = projectedInput + state.matmul(sparseRecurrentKernel!)
        let next = leakRate == 1 ? tanh(drive) : state * (1 - leakRate) + tanh(drive) * leakRate
        return (next, next)
    }
}
