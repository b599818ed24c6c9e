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
        precondition((0...1).contains(momentum), "RMSProp: momentum must lie in [0, 1], got \(momentum)")
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
        let decay = 1 - rate * weightDecay
        let rho = self.rho, complement = 1 - rho, momentum = self.momentum, epsilon = self.epsilon
        let isCentered = self.isCentered
        for item in clippedGradients(of: parameters, clipping: clipping) {
            let state = slots.slots(for: item.parameter)
            state.step += 1
            // Unused buffers alias the mean square, which the loop then never reads through them.
            let meanSquare = state.buffers[0]
            let velocity = momentum > 0 ? state.buffers[1] : meanSquare
            let meanGradient = isCentered ? state.buffers[state.buffers.count - 1] : meanSquare
            item.withBuffers { value, gradient, count in
                for i in 0..<count {
                    let g = item.clip(gradient[i])
                    let s = rho * meanSquare[i] + complement * g * g
                    meanSquare[i] = s
                    var variance = s
                    if isCentered {
                        let a = rho * meanGradient[i] + complement * g
                        meanGradient[i] = a
                        // Rounding can push s − a² a hair below zero when the gradient barely changes.
                        variance = Swift.max(s - a * a, 0)
                    }
                    let increment = rate * g / (variance.squareRoot() + epsilon)
                    if momentum == 0 {
                        value[i] = value[i] * decay - increment
                    } else {
                        let m = momentum * velocity[i] + increment
                        velocity[i] = m
                        value[i] = value[i] * decay - m
                    }
                }
            }
        }
        iterations += 1
    }

    /// Forgets every parameter's running averages and sets ``iterations`` to 0.
    public func reset() {
        slots.removeAll()
        iterations = 0
    }
}
