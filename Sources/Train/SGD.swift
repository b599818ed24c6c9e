import Graph
import Kernels

/// Stochastic gradient descent, optionally with momentum or Nesterov momentum (Keras' `SGD`).
///
/// With learning rate `η`, momentum `μ` and decoupled weight decay `λ`:
/// ```
/// μ = 0:      p ← p − η λ p − η g
/// momentum:   v ← μ v − η g                 p ← p − η λ p + v
/// Nesterov:   v ← μ v − η g                 p ← p − η λ p + μ v − η g
/// ```
/// For a constant learning rate this is PyTorch's `SGD` too (`buf ← μ buf + g`, `p ← p − η buf`).
public final class SGD: Optimizer {
    /// The base learning rate (a schedule, when set, overrides it per step).
    public var learningRate: Float
    /// How much of the previous step's velocity carries into this one, in `[0, 1]`.
    public var momentum: Float
    /// Whether the step looks ahead along the velocity (Nesterov momentum).
    public var usesNesterovMomentum: Bool
    /// The decoupled weight decay `λ`: each update also shrinks parameters by `η λ p`.
    public var weightDecay: Float
    /// How gradients are clipped before they are used, or `nil` to use them as they are.
    public var clipping: GradientClipping?
    /// The learning rate as a function of ``iterations``, or `nil` to use ``learningRate``.
    public var schedule: (any LearningRateSchedule)?
    /// The number of updates applied so far.
    public var iterations = 0
    private let velocities = ParameterStates()

    /// Creates an optimizer with Keras' defaults; `Sequential.compile` checks the settings.
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                clipping: GradientClipping? = nil, schedule: (any LearningRateSchedule)? = nil) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.usesNesterovMomentum = nesterov
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let momentum = self.momentum, isNesterov: Int32 = usesNesterovMomentum ? 1 : 0
        applyUpdate(to: parameters, states: velocities, slotCount: momentum > 0 ? 1 : 0, weightDecay: weightDecay) { step in
            unroll_sgd_step(step.value, step.gradient, momentum > 0 ? step.slot(0) : nil, step.count, step.update,
                            momentum, isNesterov)
        }
    }

    /// Checks the shared settings, then that `momentum` lies in `[0, 1]`.
    public func checkSettings() throws(TrainingError) {
        try checkSharedSettings(weightDecay: weightDecay)
        try checkSetting("momentum", momentum, (0...1).contains(momentum), "must lie in [0, 1]")
    }

    /// Forgets every parameter's velocity and sets ``iterations`` to 0.
    public func reset() {
        velocities.removeAll()
        iterations = 0
    }
}
