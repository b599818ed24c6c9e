import Graph

/// An echo state network: a fixed random recurrent reservoir and a trained linear readout.
///
/// The reservoir is a leaky-integrator tanh network whose weights are drawn once and never trained:
/// ```
/// h' = (1 − a) ⊙ h + a · tanh(x W_in + h W + b)        y = h' W_out + b_out
/// ```
/// `a` is ``leakRate``. `W_in` `[features, reservoirSize]` is uniform in `±inputScaling`; `W`
/// `[reservoirSize, reservoirSize]` is sparse (each entry nonzero with probability ``connectivity``,
/// uniform in `±1`), then rescaled so that its spectral radius (largest eigenvalue modulus, see
/// ``estimatedSpectralRadius(of:iterations:)``) is ``spectralRadius``; the reservoir bias `b` is
/// uniform in `±0.1 · inputScaling`, which breaks the symmetry `h → −h` of a bias-free tanh
/// reservoir. The three are non-trainable parameters (Keras' names: `kernel`, `recurrent_kernel`,
/// `bias`). The readout `W_out` `[reservoirSize, outputSize]` (glorot uniform) and `b_out`
/// `[outputSize]` (zeros) are ordinary trainable parameters, `readout_kernel` and `readout_bias`.
///
/// The readout is usually fitted in closed form with ``fitReadout(inputs:targets:ridge:washout:)``;
/// because the forward pass is recorded graph nodes like any layer, it can also be trained by
/// gradient descent inside a model. Keras calls `reservoirSize` *units*.
///
/// The output is the readout of the last state, `[batch, outputSize]`, or of every state,
/// `[batch, time, outputSize]`, with ``returnSequences``. The state starts at zero for every batch.
///
/// The reservoir is a ``ReservoirCell`` run by ``RNN`` (``reservoir``), so it has no time loop of its own;
/// the readout is an ordinary affine map of the states, and ``fitReadout(states:targets:ridge:washout:)``
/// a separate step (``RidgeRegression``). It is a ``WholeSequenceLayer``: its state starts at zero for every
/// call, so truncated backpropagation through time, which cuts sequences into chunks, refuses it rather than
/// restarting the reservoir at every chunk.
public final class EchoStateNetwork: WholeSequenceLayer {
    /// The reservoir: a ``ReservoirCell`` run over time, every step's state returned.
    public let reservoir: RNN<ReservoirCell>
    /// The number of readout outputs.
    public let outputSize: Int
    /// Whether the output is the readout of every step `[batch, time, outputSize]` rather than the last `[batch, outputSize]`.
    public let returnSequences: Bool
    /// `W_out`, `[reservoirSize, outputSize]`.
    public private(set) var readoutKernel: Parameter?
    /// `b_out`, `[outputSize]`.
    public private(set) var readoutBias: Parameter?
    private let seed: UInt64

    /// Creates an echo state network; give `inputShape` (`[time, features]`) when it is a model's first layer.
    public init(reservoirSize: Int, outputSize: Int, spectralRadius: Float = 0.9, leakRate: Float = 1,
                inputScaling: Float = 1, connectivity: Float = 0.1, returnSequences: Bool = false,
                inputShape: [Int]? = nil, seed: UInt64? = nil) {
        let seed = seed ?? Initializers.nextSeed()
        self.seed = seed
        let cell = ReservoirCell(hiddenSize: reservoirSize, spectralRadius: spectralRadius, leakRate: leakRate,
                                 inputScaling: inputScaling, connectivity: connectivity, seed: seed)
        reservoir = RNN(cell, returnSequences: true, inputShape: inputShape)
        reservoir.scopeName = "esn"
        self.outputSize = outputSize
        self.returnSequences = returnSequences
        if let inputShape, inputShape.count == 2, inputShape[1] > 0, invalidSettings.isEmpty { build(inputSize: inputShape[1]) }
    }

    /// "EchoStateNetwork".
    public var typeName: String { "EchoStateNetwork" }
    /// The number of reservoir units.
    public var reservoirSize: Int { reservoir.cell.hiddenSize }
    /// The spectral radius the recurrent kernel is rescaled to.
    public var spectralRadius: Float { reservoir.cell.spectralRadius }
    /// The leak rate `a` in `(1 − a) ⊙ h + a · tanh(…)`: 1 replaces the state at every step, smaller values smooth it.
    public var leakRate: Float { reservoir.cell.leakRate }
    /// The half-width of the uniform input kernel (and ten times that of the reservoir bias).
    public var inputScaling: Float { reservoir.cell.inputScaling }
    /// The probability that an entry of the recurrent kernel is nonzero.
    public var connectivity: Float { reservoir.cell.connectivity }
    /// The input shape given at creation.
    public var declaredInputShape: [Int]? { reservoir.declaredInputShape }
    /// The label of this layer's nodes on a tape.
    public var scopeName: String {
        get { reservoir.scopeName }
        set { reservoir.scopeName = newValue }
    }
    /// `W_in`, `[features, reservoirSize]`, not trainable.
    public var inputKernel: Parameter? { reservoir.cell.inputKernel }
    /// `W`, `[reservoirSize, reservoirSize]`, not trainable.
    public var recurrentKernel: Parameter? { reservoir.cell.recurrentKernel }
    /// `b`, `[reservoirSize]`, not trainable.
    public var reservoirBias: Parameter? { reservoir.cell.bias }

    /// Positive sizes, `spectralRadius` ≥ 0, `leakRate` in [0, 1], `inputScaling` ≥ 0, `connectivity` in (0, 1].
    public var invalidSettings: [SettingError] {
        reservoir.cell.invalidSettings(layer: typeName).prefix(1)
            + SettingError.unless(outputSize > 0, typeName, "outputSize", outputSize, "must be positive")
            + reservoir.cell.invalidSettings(layer: typeName).dropFirst()
    }

    /// The input size the reservoir was built for, or `nil` before it is built.
    public var inputSize: Int? { reservoir.cell.inputSize }

    /// Input kernel, recurrent kernel, reservoir bias (not trainable), readout kernel, readout bias.
    public var parameters: [Parameter] {
        reservoir.parameters + [readoutKernel, readoutBias].compactMap { $0 }
    }

    /// `[time, outputSize]` with ``returnSequences``, else `[outputSize]`.
    public func outputShape(forInputShape shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[1] > 0 else {
            throw ShapeError(layer: typeName, message: "expects input [time, features], got \(shape)")
        }
        if let inputSize, inputSize != shape[1] {
            throw ShapeError(layer: typeName, message: "built for \(inputSize) features, got \(shape[1])")
        }
        return returnSequences ? [shape[0], outputSize] : [outputSize]
    }

    /// Draws the reservoir and creates the readout for the input's feature count.
    public func build(inputShape: [Int]) throws {
        if let problem = invalidSettings.first { throw problem }
        _ = try outputShape(forInputShape: inputShape)
        build(inputSize: inputShape[1])
    }

    private func build(inputSize: Int) {
        guard readoutKernel == nil else { return }
        checkSettings(invalidSettings)
        reservoir.cell.build(inputSize: inputSize)
        readoutKernel = Parameter("readout_kernel", Initializers.glorotUniform([reservoirSize, outputSize], seed: seed &+ 3))
        readoutBias = Parameter("readout_bias", Tensor.zeros([outputSize]))
    }

    // MARK: Forward pass

    /// Returns the readout of the reservoir states, recording onto the input's tape if it has one.
    ///
    /// Every step is ordinary graph nodes, labelled `esn/t0`, `esn/t1`, … (the readout `esn/readout`),
    /// so a tape differentiates the readout like any layer; the reservoir, being non-trainable,
    /// receives no gradient.
    public func callAsFunction(_ input: Node) -> Node {
        check(input.shape.count == 3 && input.shape[1] > 0 && input.shape[2] > 0,
              "\(typeName): expects [batch, time, features], got \(input.shape)")
        let (batch, steps, features) = (input.shape[0], input.shape[1], input.shape[2])
        build(inputSize: features)
        check(inputSize == features, "\(typeName): built for \(inputSize!) features, got \(features)")
        let (states, last) = reservoir.run(input)
        return withScope(scopeName, on: input) {
            withScope("readout", on: input) {
                let kernel = input.onSameTape(readoutKernel!), bias = input.onSameTape(readoutBias!)
                guard returnSequences else { return last.matmul(kernel) + bias }
                let outputs = concatenate(states, along: 0).matmul(kernel) + bias
                return outputs.reshaped(to: [steps, batch, outputSize]).transposed(permutation: [1, 0, 2])
            }
        }
    }

    /// Returns the reservoir state after every step, `[batch, time, reservoirSize]`, for inputs
    /// `[batch, time, features]` (untaped; builds the reservoir if needed).
    ///
    /// The same states as the forward pass, which runs ``reservoir`` the same way.
    public func reservoirStates(for input: Tensor) throws(EchoStateNetworkError) -> Tensor {
        try checkInput(input.shape)
        build(inputSize: input.shape[2])
        return reservoir(Node(input)).value
    }

    /// Returns the readout of precomputed states: `[batch, time, reservoirSize]` → `[batch, time, outputSize]`,
    /// or `[batch, reservoirSize]` → `[batch, outputSize]` (untaped).
    ///
    /// With ``reservoirStates(for:)`` this predicts like the layer itself while the states are
    /// computed once (to compare readouts, or fit on one part of a series and predict the rest).
    public func readout(of states: Tensor) throws(EchoStateNetworkError) -> Tensor {
        guard let readoutKernel, let readoutBias else { throw .notBuilt }
        guard (states.rank == 2 || states.rank == 3), states.shape.last == reservoirSize else {
            throw .shapeMismatch(argument: "states", expected: "[batch, \(reservoirSize)] or [batch, time, \(reservoirSize)]",
                                 actual: states.shape)
        }
        let rows = states.reshaped(to: [-1, reservoirSize]).matmul(readoutKernel.value) + readoutBias.value
        return rows.reshaped(to: Array(states.shape.dropLast()) + [outputSize])
    }

    // MARK: Readout fitting

    /// Fits the readout in closed form by ridge regression on the reservoir states of `inputs`.
    ///
    /// `inputs` are `[batch, time, features]`; the states are those of ``reservoirStates(for:)``,
    /// and the fit is ``fitReadout(states:targets:ridge:washout:)``'s.
    public func fitReadout(inputs: Tensor, targets: Tensor, ridge: Float = 1e-6,
                           washout: Int = 0) throws(EchoStateNetworkError) {
        try checkInput(inputs.shape)
        try checkFit(batch: inputs.shape[0], steps: inputs.shape[1], targets: targets, ridge: ridge, washout: washout)
        try fitReadout(states: reservoirStates(for: inputs), targets: targets, ridge: ridge, washout: washout)
    }

    /// Fits the readout in closed form by ridge regression on precomputed reservoir states.
    ///
    /// `states` are `[batch, time, reservoirSize]`, as ``reservoirStates(for:)`` returns them. With
    /// `targets` `[batch, outputSize]` the readout is fitted on each sequence's last state (the
    /// `washout` only has to be in range); with `targets` `[batch, time, outputSize]` on every state
    /// from step `washout` on, so that the reservoir has forgotten its zero initial state. The fit minimises
    /// ```
    /// ‖S W_out + 1 b_outᵀ − Y‖² + ridge · ‖W_out‖²
    /// ```
    /// in `Double` by Cholesky factorisation, the bias unpenalised (see ``RidgeRegression``), and
    /// replaces the values of ``readoutKernel`` and ``readoutBias``.
    ///
    /// Throws ``EchoStateNetworkError`` for a state or target shape that does not fit, a washout out
    /// of range, a negative ridge, or a system too singular to solve (raise the ridge).
    public func fitReadout(states: Tensor, targets: Tensor, ridge: Float = 1e-6,
                           washout: Int = 0) throws(EchoStateNetworkError) {
        guard let readoutKernel, let readoutBias else { throw .notBuilt }
        guard states.rank == 3, states.shape[1] > 0, states.shape[2] == reservoirSize else {
            throw .shapeMismatch(argument: "states", expected: "[batch, time ≥ 1, \(reservoirSize)]",
                                 actual: states.shape)
        }
        let (batch, steps) = (states.shape[0], states.shape[1])
        try checkFit(batch: batch, steps: steps, targets: targets, ridge: ridge, washout: washout)
        let sequenceTargets = targets.rank == 3
        let units = reservoirSize, outputs = outputSize
        var regression = RidgeRegression(featureCount: units, outputCount: outputs)
        // One sequence at a time, so the sums are added in the same order whatever the batch.
        for b in 0..<batch {
            let sequence = states.slice(along: 0, b..<(b + 1)).reshaped(to: [steps, units])
            if sequenceTargets {
                let sequenceTargets = targets.slice(along: 0, b..<(b + 1)).reshaped(to: [steps, outputs])
                regression.add(sequence.slice(along: 0, washout..<steps), sequenceTargets.slice(along: 0, washout..<steps))
            } else {
                regression.add(sequence.slice(along: 0, (steps - 1)..<steps), targets.slice(along: 0, b..<(b + 1)))
            }
        }
        do {
            let (weights, bias) = try regression.solve(ridge: Double(ridge))
            readoutKernel.value = weights
            readoutBias.value = bias
        } catch {
            throw .singularReadoutSystem(ridge: ridge)
        }
    }

    private func checkFit(batch: Int, steps: Int, targets: Tensor, ridge: Float,
                          washout: Int) throws(EchoStateNetworkError) {
        let expected = targets.rank == 3 ? [batch, steps, outputSize] : [batch, outputSize]
        guard targets.shape == expected, batch > 0 else {
            throw .shapeMismatch(argument: "targets",
                                 expected: "\([batch, outputSize]) or \([batch, steps, outputSize])",
                                 actual: targets.shape)
        }
        guard (0..<steps).contains(washout) else { throw .invalidWashout(washout, timeSteps: steps) }
        guard ridge >= 0, ridge.isFinite else { throw .invalidRidge(ridge) }
    }

    private func checkInput(_ shape: [Int]) throws(EchoStateNetworkError) {
        let features = inputSize.map(String.init) ?? "features"
        guard shape.count == 3, shape[1] > 0, shape[2] > 0, inputSize == nil || inputSize == shape[2] else {
            throw .shapeMismatch(argument: "inputs", expected: "[batch, time ≥ 1, \(features)]", actual: shape)
        }
    }

    // MARK: Spectral radius

    /// Returns the spectral radius (the largest eigenvalue modulus) of a square matrix, estimated
    /// from the growth rate of power iteration; see ``SparseMatrix/estimatedSpectralRadius(iterations:)``.
    public static func estimatedSpectralRadius(of matrix: Tensor, iterations: Int = 1000) -> Float {
        check(matrix.rank == 2 && matrix.shape[0] == matrix.shape[1],
              "estimatedSpectralRadius: needs a square matrix, got \(matrix.shape)")
        return SparseMatrix(matrix).estimatedSpectralRadius(iterations: iterations)
    }
}

/// Why an echo state network could not take its data or fit its readout.
public enum EchoStateNetworkError: Error, Equatable, CustomStringConvertible {
    /// An argument's shape is not the expected one.
    case shapeMismatch(argument: String, expected: String, actual: [Int])
    /// The washout is negative or not shorter than the sequences.
    case invalidWashout(Int, timeSteps: Int)
    /// The ridge is negative or not finite.
    case invalidRidge(Float)
    /// The regularised readout system is numerically singular: raise the ridge.
    case singularReadoutSystem(ridge: Float)
    /// States were given before the reservoir was built (by an input shape, a build or a first input).
    case notBuilt

    /// A sentence naming the problem.
    public var description: String {
        switch self {
        case let .shapeMismatch(argument, expected, actual):
            "EchoStateNetwork: \(argument) should have shape \(expected), got \(actual)"
        case let .invalidWashout(washout, steps):
            "EchoStateNetwork: washout \(washout) is not in 0..<\(steps) (the number of time steps)"
        case let .invalidRidge(ridge):
            "EchoStateNetwork: the ridge must be finite and not negative, got \(ridge)"
        case let .singularReadoutSystem(ridge):
            "EchoStateNetwork: the readout system is singular with ridge \(ridge); use a larger ridge"
        case .notBuilt:
            "EchoStateNetwork: the layer is not built yet; build it or pass inputs first"
        }
    }
}
