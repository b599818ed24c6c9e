import Graph

/// RMSProp: steps divided by a running root mean square of the gradients (Keras' `RMSprop`).
///
/// With learning rate `η`, decay `ρ`, momentum `μ` and decoupled weight decay `λ`:
/// ```
/// s ← ρ s + (1 − ρ) g²
/// centered:   a ← ρ a + (1 − ρ) g          d = √(s − a²) + ε
/// otherwise:                               d = √s + ε
/// μ = 0:      p ← p − η λ p − η g / d
/// momentum:   m ← μ m + η g / d            p ← p − η λ p − m
/// ```
/// `ε` is added after the square root as in PyTorch's `RMSprop` (Keras adds it under the root,
/// `√(s + ε)`; the two agree to within `ε`-sized terms), so PyTorch's numbers are matched exactly.
public final class RMSProp: Optimizer {
    /// The base learning rate (a schedule, when set, overrides it per step).
    public var learningRate: Float
    /// The decay `ρ` of the running averages (PyTorch calls it `alpha`).
    public var rho: Float
    /// How much of the previous step carries into this one, in `[0, 1]`.
    public let momentum: Float
    /// Added to the denominator so that it never vanishes.
    public var epsilon: Float
    /// Whether the gradients' running mean is subtracted, normalizing by an estimate of their variance.
    public let isCentered: Bool
    /// The decoupled weight decay `λ`: each update also shrinks parameters by `η λ p`.
    public var weightDecay: Float
    /// How gradients are clipped before they are used, or `nil` to use them as they are.
    public var clipping: GradientClipping?
    /// The learning rate as a function of ``iterations``, or `nil` to use ``learningRate``.
    public var schedule: (any LearningRateSchedule)?
    /// The number of updates applied so far.
    public var iterations = 0
    /// Per parameter: the mean square `s`, then the momentum buffer `m` and the mean gradient `a` when used.
    private var slots: SlotTable

    /// Creates an optimizer with Keras' defaults.
    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        check((0...1).contains(momentum), "RMSProp: momentum must lie in [0, 1], got \(momentum)")
        self.learningRate = learningRate
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.isCentered = centered
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
        slots = SlotTable(slotCount: 1 + (momentum > 0 ? 1 : 0) + (centered ? 1 : 0))
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let rate = currentLearningRate
        let settings = Settings(rate: rate, decay: 1 - rate * weightDecay, rho: rho, momentum: momentum,
                                epsilon: epsilon)
        for item in clippedGradients(of: parameters, clipping: clipping) {
            let state = slots.slots(for: item.parameter)
            state.step += 1
            let meanSquare = state.buffers[0]
            let velocity = momentum > 0 ? state.buffers[1] : nil
            let meanGradient = isCentered ? state.buffers[state.buffers.count - 1] : nil
            let clip = item.clip
            item.withBuffers { value, gradient, count in
                RMSProp.step(value, gradient, meanSquare, velocity, meanGradient, count: count, clip: clip,
                             settings: settings)
            }
        }
        iterations += 1
    }

    /// The hyperparameters one update uses, with the weight decay as the factor `1 − η λ`.
    private struct Settings {
        let rate: Float, decay: Float, rho: Float, momentum: Float, epsilon: Float
    }

    /// The update over one parameter's buffers; `velocity` is `nil` without momentum, `meanGradient`
    /// `nil` unless centered.
    private static func step(_ value: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                             _ meanSquare: UnsafeMutablePointer<Float>, _ velocity: UnsafeMutablePointer<Float>?,
                             _ meanGradient: UnsafeMutablePointer<Float>?, count: Int, clip: Lanes.Clip,
                             settings: Settings) {
        let rate = settings.rate, decay = settings.decay, rho = settings.rho, complement = 1 - settings.rho
        let momentum = settings.momentum, epsilon = settings.epsilon
        Lanes.forEachBlock(count: count) { offset, width in
            let g = clip(Lanes.load(gradient, offset, width))
            let s = rho * Lanes.load(meanSquare, offset, width) + complement * g * g
            Lanes.store(s, meanSquare, offset, width)
            var variance = s
            if let meanGradient {
                let a = rho * Lanes.load(meanGradient, offset, width) + complement * g
                Lanes.store(a, meanGradient, offset, width)
                // Rounding can push s − a² a hair below zero when the gradient barely changes.
                variance = Lanes.maximum(Lanes.Vector(), s - a * a)
            }
            var step = rate * g / (Lanes.squareRoot(variance) + epsilon)
            if let velocity {
                step += momentum * Lanes.load(velocity, offset, width)
                Lanes.store(step, velocity, offset, width)
            }
            Lanes.store(Lanes.load(value, offset, width) * decay - step, value, offset, width)
        }
    }

    /// Forgets every parameter's running averages and sets ``iterations`` to 0.
    public func reset() {
        slots.removeAll()
        iterations = 0
    }
}
