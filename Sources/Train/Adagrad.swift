import Graph

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
    private var accumulators: SlotTable

    /// Creates an optimizer with Keras' defaults.
    public init(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7,
                weightDecay: Float = 0, clipping: GradientClipping? = nil,
                schedule: (any LearningRateSchedule)? = nil) {
        check(initialAccumulatorValue >= 0,
                     "Adagrad: initialAccumulatorValue must not be negative, got \(initialAccumulatorValue)")
        self.learningRate = learningRate
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
        accumulators = SlotTable(slotCount: 1, initialValue: initialAccumulatorValue)
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let rate = currentLearningRate
        let decay = 1 - rate * weightDecay
        let epsilon = self.epsilon
        for item in clippedGradients(of: parameters, clipping: clipping) {
            let state = accumulators.slots(for: item.parameter)
            state.step += 1
            let accumulator = state.buffers[0], clip = item.clip
            item.withBuffers { value, gradient, count in
                Adagrad.step(value, gradient, accumulator, count: count, clip: clip, rate: rate, decay: decay,
                             epsilon: epsilon)
            }
        }
        iterations += 1
    }

    /// The update over one parameter's buffers.
    private static func step(_ value: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                             _ accumulator: UnsafeMutablePointer<Float>, count: Int, clip: Lanes.Clip,
                             rate: Float, decay: Float, epsilon: Float) {
        Lanes.forEachBlock(count: count) { offset, width in
            let g = clip(Lanes.load(gradient, offset, width))
            let s = Lanes.load(accumulator, offset, width) + g * g
            Lanes.store(s, accumulator, offset, width)
            let p = Lanes.load(value, offset, width) * decay - rate * g / (Lanes.squareRoot(s) + epsilon)
            Lanes.store(p, value, offset, width)
        }
    }

    /// Forgets every parameter's accumulator and sets ``iterations`` to 0.
    public func reset() {
        accumulators.removeAll()
        iterations = 0
    }
}
