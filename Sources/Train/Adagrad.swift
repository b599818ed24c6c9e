import Graph
import Kernels

/// Adagrad: each element's steps shrink with the sum of its squared gradients so far (Keras' `Adagrad`).
///
/// With learning rate `η` and decoupled weight decay `λ`, the accumulator starting at
/// `initialAccumulatorValue`:
/// ```
/// s ← s + g²        p ← p − η λ p − η g / (√s + ε)
/// ```
/// `ε` is added after the square root as in PyTorch (Keras writes `√(s + ε)`; with the accumulator
/// starting at 0.1 the two differ by less than one part in a million).
public final class Adagrad: Optimizer {
    /// The base learning rate (a schedule, when set, overrides it per step).
    public var learningRate: Float
    /// The value every accumulator element starts from; changing it affects only parameters seen later.
    public let initialAccumulatorValue: Float
    /// Added to the denominator so that it never vanishes.
    public var epsilon: Float
    /// The decoupled weight decay `λ`: each update also shrinks parameters by `η λ p`.
    public var weightDecay: Float
    /// How gradients are clipped before they are used, or `nil` to use them as they are.
    public var clipping: GradientClipping?
    /// The learning rate as a function of ``iterations``, or `nil` to use ``learningRate``.
    public var schedule: (any LearningRateSchedule)?
    /// The number of updates applied so far.
    public var iterations = 0
    private let accumulators: ParameterStates

    /// Creates an optimizer with Keras' defaults; `Sequential.compile` checks the settings.
    public init(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        self.learningRate = learningRate
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
        accumulators = ParameterStates(initialValue: initialAccumulatorValue)
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let epsilon = self.epsilon
        applyUpdate(to: parameters, states: accumulators, slotCount: 1, weightDecay: weightDecay) { step in
            unroll_adagrad_step(step.value, step.gradient, step.slot(0), step.count, step.update, epsilon)
        }
    }

    /// Checks the shared settings, then that `initialAccumulatorValue` and `epsilon` are not negative.
    public func checkSettings() throws(TrainingError) {
        try checkSharedSettings(weightDecay: weightDecay)
        try checkSetting("initialAccumulatorValue", initialAccumulatorValue,
                  initialAccumulatorValue.isFinite && initialAccumulatorValue >= 0, "must be finite and not negative")
        try checkSetting("epsilon", epsilon, epsilon.isFinite && epsilon >= 0, "must be finite and not negative")
    }

    /// Forgets every parameter's accumulator and sets ``iterations`` to 0.
    public func reset() {
        accumulators.removeAll()
        iterations = 0
    }
}
