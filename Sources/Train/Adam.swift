import Foundation
import Graph

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
    /// The decay of the running average of gradients.
    public var beta1: Float
    /// The decay of the running average of squared gradients.
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
    private var moments: SlotTable

    /// Creates an optimizer with Keras' defaults (PyTorch's `eps` default is 1e-8).
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                amsgrad: Bool = false, weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        check((0..<1).contains(beta1) && (0..<1).contains(beta2),
                     "Adam: beta1 and beta2 must lie in [0, 1), got \(beta1) and \(beta2)")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.usesAMSGrad = amsgrad
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
        moments = SlotTable(slotCount: amsgrad ? 3 : 2)
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let rate = currentLearningRate
        let settings = Settings(decay: 1 - rate * weightDecay, beta1: beta1, beta2: beta2, epsilon: epsilon)
        for item in clippedGradients(of: parameters, clipping: clipping) {
            let state = moments.slots(for: item.parameter)
            state.step += 1
            let t = Double(state.step)
            // Bias corrections in Double: 1 − β₂ᵗ is ~1e-3 at t = 1, where Float's pow loses digits.
            let stepSize = Float(Double(rate) / (1 - pow(Double(beta1), t)))
            let inverseRootCorrection = Float(1 / (1 - pow(Double(beta2), t)).squareRoot())
            let first = state.buffers[0], second = state.buffers[1]
            let maximum = usesAMSGrad ? state.buffers[2] : nil, clip = item.clip
            item.withBuffers { value, gradient, count in
                Adam.step(value, gradient, first, second, maximum, count: count, clip: clip, settings: settings,
                          stepSize: stepSize, inverseRootCorrection: inverseRootCorrection)
            }
        }
        iterations += 1
    }

    /// The hyperparameters one update uses, with the weight decay as the factor `1 − η λ`.
    private struct Settings {
        let decay: Float, beta1: Float, beta2: Float, epsilon: Float
    }

    /// The update over one parameter's buffers; `maximum` is AMSGrad's `v̂`, `nil` without AMSGrad.
    private static func step(_ value: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                             _ first: UnsafeMutablePointer<Float>, _ second: UnsafeMutablePointer<Float>,
                             _ maximum: UnsafeMutablePointer<Float>?, count: Int, clip: Lanes.Clip,
                             settings: Settings, stepSize: Float, inverseRootCorrection: Float) {
        let beta1 = settings.beta1, beta2 = settings.beta2, epsilon = settings.epsilon, decay = settings.decay
        Lanes.forEachBlock(count: count) { offset, width in
            let g = clip(Lanes.load(gradient, offset, width))
            let m = beta1 * Lanes.load(first, offset, width) + (1 - beta1) * g
            var v = beta2 * Lanes.load(second, offset, width) + (1 - beta2) * g * g
            Lanes.store(m, first, offset, width)
            Lanes.store(v, second, offset, width)
            if let maximum {
                v = Lanes.maximum(Lanes.load(maximum, offset, width), v)
                Lanes.store(v, maximum, offset, width)
            }
            let p = Lanes.load(value, offset, width) * decay
                - stepSize * m / (Lanes.squareRoot(v) * inverseRootCorrection + epsilon)
            Lanes.store(p, value, offset, width)
        }
    }

    /// Forgets every parameter's moments and step count and sets ``iterations`` to 0.
    public func reset() {
        moments.removeAll()
        iterations = 0
    }
}
