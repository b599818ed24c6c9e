import Foundation
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
public final class EchoStateNetwork: Layer {
    /// The number of reservoir units.
    public let reservoirSize: Int
    /// The number of readout outputs.
    public let outputSize: Int
    /// The spectral radius the recurrent kernel is rescaled to.
    public let spectralRadius: Float
    /// The leak rate `a` in `(1 − a) ⊙ h + a · tanh(…)`: 1 replaces the state at every step, smaller values smooth it.
    public let leakRate: Float
    /// The half-width of the uniform input kernel (and ten times that of the reservoir bias).
    public let inputScaling: Float
    /// The probability that an entry of the recurrent kernel is nonzero.
    public let connectivity: Float
    /// Whether the output is the readout of every step `[batch, time, outputSize]` rather than the last `[batch, outputSize]`.
    public let returnSequences: Bool
    /// The input shape given at creation.
    public let declaredInputShape: [Int]?
    /// The label of this layer's nodes on a tape.
    public var scopeName = "esn"
    /// `W_in`, `[features, reservoirSize]`, not trainable.
    public private(set) var inputKernel: Parameter?
    /// `W`, `[reservoirSize, reservoirSize]`, not trainable.
    public private(set) var recurrentKernel: Parameter?
    /// `b`, `[reservoirSize]`, not trainable.
    public private(set) var reservoirBias: Parameter?
    /// `W_out`, `[reservoirSize, outputSize]`.
    public private(set) var readoutKernel: Parameter?
    /// `b_out`, `[outputSize]`.
    public private(set) var readoutBias: Parameter?
    private let seed: UInt64

    /// Creates an echo state network; give `inputShape` (`[time, features]`) when it is a model's first layer.
    public init(reservoirSize: Int, outputSize: Int, spectralRadius: Float = 0.9, leakRate: Float = 1,
                inputScaling: Float = 1, connectivity: Float = 0.1, returnSequences: Bool = false,
                inputShape: [Int]? = nil, seed: UInt64? = nil) {
        self.reservoirSize = reservoirSize
        self.outputSize = outputSize
        self.spectralRadius = spectralRadius
        self.leakRate = leakRate
        self.inputScaling = inputScaling
        self.connectivity = connectivity
        self.returnSequences = returnSequences
        self.declaredInputShape = inputShape
        self.seed = seed ?? Initializers.nextSeed()
        if let inputShape, inputShape.count == 2, inputShape[1] > 0, invalidSettings.isEmpty { build(inputSize: inputShape[1]) }
    }

    /// "EchoStateNetwork".
    public var typeName: String { "EchoStateNetwork" }
    /// Positive sizes, `spectralRadius` ≥ 0, `leakRate` in [0, 1], `inputScaling` ≥ 0, `connectivity` in (0, 1].
    public var invalidSettings: [SettingError] {
        SettingError.unless(reservoirSize > 0, typeName, "reservoirSize", reservoirSize, "must be positive")
            + SettingError.unless(outputSize > 0, typeName, "outputSize", outputSize, "must be positive")
            + SettingError.unless(spectralRadius >= 0, typeName, "spectralRadius", spectralRadius, "must not be negative")
            + SettingError.unless((0...1).contains(leakRate), typeName, "leakRate", leakRate, "must lie in [0, 1]")
            + SettingError.unless(inputScaling >= 0, typeName, "inputScaling", inputScaling, "must not be negative")
            + SettingError.unless(connectivity > 0 && connectivity <= 1, typeName, "connectivity", connectivity,
                                  "must lie in (0, 1]")
    }

    /// The input size the reservoir was built for, or `nil` before it is built.
    public var inputSize: Int? { inputKernel?.shape[0] }

    /// Input kernel, recurrent kernel, reservoir bias (not trainable), readout kernel, readout bias.
    public var parameters: [Parameter] {
        [inputKernel, recurrentKernel, reservoirBias, readoutKernel, readoutBias].compactMap { $0 }
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
        guard inputKernel == nil else { return }
        checkSettings(invalidSettings)
        let units = reservoirSize
        inputKernel = Parameter("kernel", Tensor.randomUniform([inputSize, units], in: -inputScaling...inputScaling,
                                                              seed: seed), isTrainable: false)
        var generator = SeededGenerator(seed: seed &+ 1)
        var recurrent = Tensor.zeros([units, units])
        recurrent.withUnsafeMutableBufferPointer { weights in
            for i in weights.indices where generator.nextUnitFloat() < connectivity {
                weights[i] = generator.nextFloat(in: -1...1)
            }
        }
        let radius = Self.estimatedSpectralRadius(of: recurrent)
        // A reservoir too sparse to have a cycle is nilpotent (radius 0): it cannot be rescaled, so it stays as drawn.
        if radius > 0 { recurrent = recurrent * (spectralRadius / radius) }
        recurrentKernel = Parameter("recurrent_kernel", recurrent, isTrainable: false)
        let biasScale = 0.1 * inputScaling
        reservoirBias = Parameter("bias", Tensor.randomUniform([units], in: -biasScale...biasScale, seed: seed &+ 2),
                                  isTrainable: false)
        readoutKernel = Parameter("readout_kernel", Initializers.glorotUniform([units, outputSize], seed: seed &+ 3))
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
        let units = reservoirSize, leak = leakRate
        return withScope(scopeName, on: input) {
            let recurrent = input.onSameTape(recurrentKernel!)
            // Time-major, so each step's slice of the projection is a view.
            let timeMajor = input.transposed(permutation: [1, 0, 2]).reshaped(to: [steps * batch, features])
            let projected = timeMajor.matmul(input.onSameTape(inputKernel!)) + input.onSameTape(reservoirBias!)
            var state = input.onSameTape(Tensor.zeros([batch, units]))
            var states: [Node] = []
            if returnSequences { states.reserveCapacity(steps) }
            for t in 0..<steps {
                state = withScope("t\(t)", on: input) {
                    let drive = projected.slice(along: 0, (t * batch)..<((t + 1) * batch)) + state.matmul(recurrent)
                    return leak == 1 ? tanh(drive) : state * (1 - leak) + tanh(drive) * leak
                }
                if returnSequences { states.append(state) }
            }
            return withScope("readout", on: input) {
                let kernel = input.onSameTape(readoutKernel!), bias = input.onSameTape(readoutBias!)
                guard returnSequences else { return state.matmul(kernel) + bias }
                let outputs = concatenate(states, along: 0).matmul(kernel) + bias
                return outputs.reshaped(to: [steps, batch, outputSize]).transposed(permutation: [1, 0, 2])
            }
        }
    }

    /// Returns the reservoir state after every step, `[batch, time, reservoirSize]`, for inputs
    /// `[batch, time, features]` (untaped; builds the reservoir if needed).
    ///
    /// Computes the same states as the forward pass without recording anything: one matrix product
    /// for the input projection, then per step the recurrent product and a pointer loop. For a few
    /// sequences through a sparse reservoir (the usual case: one long series) the recurrent product
    /// visits only the nonzero weights; otherwise it is one matrix product for the whole batch.
    public func reservoirStates(for input: Tensor) throws(EchoStateNetworkError) -> Tensor {
        try checkInput(input.shape)
        let (batch, steps, features) = (input.shape[0], input.shape[1], input.shape[2])
        build(inputSize: features)
        let units = reservoirSize, leak = leakRate, keep = 1 - leakRate
        let recurrent = recurrentKernel!.value
        let sparse = SparseRows(recurrent)
        // Measured in release builds: the scalar sparse loop matches the vectorised GEMM for one sequence
        // at 10 % connectivity and wins below it; denser weights or a larger batch favour the GEMM.
        let usesSparseProduct = batch <= 4 && sparse.values.count * 8 <= units * units
        // Batch-major rows: row b·time + t is step t of sequence b.
        let projected = input.reshaped(to: [batch * steps, features]).matmul(inputKernel!.value)
        var states = Tensor.zeros([batch, steps, units])
        var state = Tensor.zeros([batch, units])
        projected.withUnsafeBufferPointer { projectedBuffer in
            reservoirBias!.value.withUnsafeBufferPointer { biasBuffer in
                states.withUnsafeMutableBufferPointer { statesBuffer in
                    let p = projectedBuffer.baseAddress!, bias = biasBuffer.baseAddress!
                    let output = statesBuffer.baseAddress!
                    for t in 0..<steps {
                        var drive: Tensor
                        if usesSparseProduct {
                            drive = Tensor.zeros([batch, units])
                            state.withUnsafeBufferPointer { h in
                                drive.withUnsafeMutableBufferPointer { d in
                                    sparse.multiply(rows: h.baseAddress!, count: batch, into: d.baseAddress!)
                                }
                            }
                        } else {
                            drive = state.matmul(recurrent)
                        }
                        drive.withUnsafeMutableBufferPointer { driveBuffer in
                            let d = driveBuffer.baseAddress!
                            for b in 0..<batch {
                                let row = d + b * units, source = p + (b * steps + t) * units
                                var j = 0
                                while j < units { row[j] += source[j] + bias[j]; j += 1 }
                            }
                        }
                        let activated = drive.tanh()
                        activated.withUnsafeBufferPointer { activatedBuffer in
                            state.withUnsafeMutableBufferPointer { stateBuffer in
                                let a = activatedBuffer.baseAddress!, h = stateBuffer.baseAddress!
                                for b in 0..<batch {
                                    let hRow = h + b * units, aRow = a + b * units
                                    let target = output + (b * steps + t) * units
                                    var j = 0
                                    while j < units {
                                        let next = keep * hRow[j] + leak * aRow[j]
                                        hRow[j] = next
                                        target[j] = next
                                        j += 1
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return states
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
        states.withUnsafeBufferPointer { statesBuffer in
            targets.withUnsafeBufferPointer { targetsBuffer in
                guard let s = statesBuffer.baseAddress, let y = targetsBuffer.baseAddress else { return }
                for b in 0..<batch {
                    if sequenceTargets {
                        regression.add(featureRows: s + (b * steps + washout) * units,
                                       targetRows: y + (b * steps + washout) * outputs, rows: steps - washout)
                    } else {
                        regression.add(featureRows: s + (b * steps + steps - 1) * units, targetRows: y + b * outputs,
                                       rows: 1)
                    }
                }
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
    /// from the growth rate of power iteration in `Double`.
    ///
    /// A random reservoir's eigenvalues fill a disc, so its leading eigenvalue is often a complex
    /// pair with others close behind; the iterate then never settles, but its growth still does:
    /// ```
    /// ρ ≈ (‖Wᴷ v‖ / ‖Wᴷ⁰ v‖)^(1 / (K − K₀))
    /// ```
    /// with `K₀ = iterations / 5` steps of warm-up to let transients decay. The error is about
    /// `log(c) / (K − K₀)`, where `c` bounds how much eigenvectors of nearly equal modulus interfere:
    /// a fraction of a percent for the default 1,000 iterations. A nilpotent matrix gives 0.
    public static func estimatedSpectralRadius(of matrix: Tensor, iterations: Int = 1000) -> Float {
        check(matrix.rank == 2 && matrix.shape[0] == matrix.shape[1],
                     "estimatedSpectralRadius: needs a square matrix, got \(matrix.shape)")
        check(iterations >= 5, "estimatedSpectralRadius: needs at least 5 iterations, got \(iterations)")
        let n = matrix.shape[0]
        // Each product costs the nonzeros, not n²: reservoirs are sparse.
        let sparse = SparseRows(matrix)
        var generator = SeededGenerator(seed: 0x5EC7_AD1A)
        var vector = (0..<n).map { _ in Double(generator.nextFloat(in: -1...1)) + 1e-3 }
        var product = [Double](repeating: 0, count: n)
        let warmUp = iterations / 5
        var logGrowth = 0.0
        var vanished = false
        sparse.rowStarts.withUnsafeBufferPointer { starts in
            sparse.columns.withUnsafeBufferPointer { columns in
                sparse.values.withUnsafeBufferPointer { values in
                    vector.withUnsafeMutableBufferPointer { v in
                        product.withUnsafeMutableBufferPointer { w in
                            var norm = 0.0
                            for i in 0..<n { norm += v[i] * v[i] }
                            norm = norm.squareRoot()
                            for i in 0..<n { v[i] /= norm }
                            for k in 0..<iterations {
                                norm = 0
                                var i = 0
                                while i < n {
                                    var sum = 0.0
                                    var e = starts[i]
                                    let end = starts[i + 1]
                                    while e < end { sum += Double(values[e]) * v[columns[e]]; e += 1 }
                                    w[i] = sum
                                    norm += sum * sum
                                    i += 1
                                }
                                norm = norm.squareRoot()
                                guard norm > 0, norm.isFinite else { vanished = true; return }
                                i = 0
                                while i < n { v[i] = w[i] / norm; i += 1 }
                                if k >= warmUp { logGrowth += Foundation.log(norm) }
                            }
                        }
                    }
                }
            }
        }
        return vanished ? 0 : Float(Foundation.exp(logGrowth / Double(iterations - warmUp)))
    }
}

/// The nonzero entries of a matrix, row by row, for products that skip its zeros.
struct SparseRows {
    let columnCount: Int
    /// Where each row's entries start in ``columns`` and ``values``; one more entry than rows.
    var rowStarts: [Int] = [0]
    var columns: [Int] = []
    var values: [Float] = []

    init(_ matrix: Tensor) {
        check(matrix.rank == 2, "SparseRows: needs a matrix, got \(matrix.shape)")
        let (rows, columnCount) = (matrix.shape[0], matrix.shape[1])
        self.columnCount = columnCount
        matrix.withUnsafeBufferPointer { m in
            for i in 0..<rows {
                for j in 0..<columnCount where m[i * columnCount + j] != 0 {
                    columns.append(j)
                    values.append(m[i * columnCount + j])
                }
                rowStarts.append(columns.count)
            }
        }
    }

    /// Writes `x · M` into `y` for `count` row vectors `x` `[count, rows]`, `y` `[count, columnCount]`.
    func multiply(rows x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        let rows = rowStarts.count - 1
        y.update(repeating: 0, count: count * columnCount)
        rowStarts.withUnsafeBufferPointer { starts in
            columns.withUnsafeBufferPointer { columns in
                values.withUnsafeBufferPointer { values in
                    for b in 0..<count {
                        let xRow = x + b * rows, yRow = y + b * columnCount
                        var i = 0
                        while i < rows {
                            let scale = xRow[i]
                            var e = starts[i]
                            let end = starts[i + 1]
                            while e < end { yRow[columns[e]] += scale * values[e]; e += 1 }
                            i += 1
                        }
                    }
                }
            }
        }
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
