import Graph
import Kernels

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
    private let slots = ParameterStates()

    /// Creates an optimizer with Keras' defaults; `Sequential.compile` checks the settings.
    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                centered: Bool = false, weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        self.learningRate = learningRate
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.isCentered = centered
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let (rho, momentum, epsilon, isCentered) = (self.rho, self.momentum, self.epsilon, self.isCentered)
        let hasVelocity = momentum > 0
        let slotCount = 1 + (hasVelocity ? 1 : 0) + (isCentered ? 1 : 0)
        applyUpdate(to: parameters, states: slots, slotCount: slotCount, weightDecay: weightDecay) { step in
            unroll_rmsprop_step(step.value, step.gradient, step.slot(0), hasVelocity ? step.slot(1) : nil,
                                isCentered ? step.slot(slotCount - 1) : nil, step.count, step.update, rho, momentum,
                                epsilon)
        }
    }

    /// Checks the shared settings, then that `rho` lies in `[0, 1)`, `momentum` in `[0, 1]` and `epsilon` is
    /// not negative.
    public func checkSettings() throws(TrainingError) {
        try checkSharedSettings(weightDecay: weightDecay)
        try checkSetting("rho", rho, (0..<1).contains(rho), "must lie in [0, 1)")
        try checkSetting("momentum", momentum, (0...1).contains(momentum), "must lie in [0, 1]")
        try checkSetting("epsilon", epsilon, epsilon.isFinite && epsilon >= 0, "must be finite and not negative")
    }

    /// Forgets every parameter's running averages and sets ``iterations`` to 0.
    public func reset() {
        slots.removeAll()
        iterations = 0
    }
}
