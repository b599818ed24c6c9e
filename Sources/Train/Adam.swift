import Foundation
import Graph
import Kernels

/// Adam: steps from bias-corrected running averages of the gradient and its square (Keras' `Adam`),
/// optionally AMSGrad, and AdamW when `weightDecay` is set.
///
/// With learning rate `η`, decoupled weight decay `λ` and `t` the number of updates this parameter has
/// received, counting this one:
/// ```
/// m ← β₁ m + (1 − β₁) g        v ← β₂ v + (1 − β₂) g²        (AMSGrad: v̂ ← max(v̂, v), used for v)
/// p ← p − η λ p − η / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)
/// ```
/// This is the paper's and PyTorch's form. Keras adds `ε` to `√v` before the bias correction
/// (its "epsilon hat"), which differs only in the size of `ε`'s effect.
///
/// `t` counts per parameter: a parameter skipped because its gradient is `nil` keeps its averages and
/// its `t` (PyTorch's semantics). When every parameter gets a gradient at every step, `t` equals the
/// optimizer's ``iterations`` after the update, which is what Keras uses.
public final class Adam: Optimizer {
    /// The base learning rate (a schedule, when set, overrides it per step).
    public var learningRate: Float
    /// The decay of the running average of gradients, in `[0, 1)`.
    public var beta1: Float
    /// The decay of the running average of squared gradients, in `[0, 1)`.
    public var beta2: Float
    /// Added to the denominator so that it never vanishes.
    public var epsilon: Float
    /// Whether the largest running average of squared gradients seen so far is used (AMSGrad).
    public let usesAMSGrad: Bool
    /// The decoupled weight decay `λ` (AdamW): each update also shrinks parameters by `η λ p`.
    public var weightDecay: Float
    /// How gradients are clipped before they are used, or `nil` to use them as they are.
    public var clipping: GradientClipping?
    /// The learning rate as a function of ``iterations``, or `nil` to use ``learningRate``.
    public var schedule: (any LearningRateSchedule)?
    /// The number of updates applied so far.
    public var iterations = 0
    /// Per parameter: the first moment `m`, the second moment `v` and, for AMSGrad, the maximum `v̂`.
    private let moments = ParameterStates()

    /// Creates an optimizer with Keras' defaults (PyTorch's `eps` default is 1e-8); `Sequential.compile`
    /// checks the settings.
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                amsgrad: Bool = false, weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.usesAMSGrad = amsgrad
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let (beta1, beta2, epsilon, usesAMSGrad) = (self.beta1, self.beta2, self.epsilon, self.usesAMSGrad)
        applyUpdate(to: parameters, states: moments, slotCount: usesAMSGrad ? 3 : 2, weightDecay: weightDecay) { step in
            let t = Double(step.step)
            // Bias corrections in Double: 1 − β₂ᵗ is ~1e-3 at t = 1, where Float's pow loses digits.
            var update = step.update
            update.rate = Float(Double(update.rate) / (1 - pow(Double(beta1), t)))
            let correction = Float(1 / (1 - pow(Double(beta2), t)).squareRoot())
            unroll_adam_step(step.value, step.gradient, step.slot(0), step.slot(1), usesAMSGrad ? step.slot(2) : nil,
                             step.count, update, beta1, beta2, epsilon, correction)
        }
    }

    /// Checks the shared settings, then that `beta1` and `beta2` lie in `[0, 1)` and `epsilon` is not negative.
    public func checkSettings() throws(TrainingError) {
        try checkSharedSettings(weightDecay: weightDecay)
        try checkSetting("beta1", beta1, (0..<1).contains(beta1), "must lie in [0, 1)")
        try checkSetting("beta2", beta2, (0..<1).contains(beta2), "must lie in [0, 1)")
        try checkSetting("epsilon", epsilon, epsilon.isFinite && epsilon >= 0, "must be finite and not negative")
    }

    /// Forgets every parameter's moments and step count and sets ``iterations`` to 0.
    public func reset() {
        moments.removeAll()
        iterations = 0
    }
}
