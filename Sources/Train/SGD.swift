import Graph

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
    private var velocities = SlotTable(slotCount: 1)

    /// Creates an optimizer with Keras' defaults.
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0,
                clipping: GradientClipping? = nil, schedule: (any LearningRateSchedule)? = nil) {
        check((0...1).contains(momentum), "SGD: momentum must lie in [0, 1], got \(momentum)")
        self.learningRate = learningRate
        self.momentum = momentum
        self.usesNesterovMomentum = nesterov
        self.weightDecay = weightDecay
        self.clipping = clipping
        self.schedule = schedule
    }

    /// Applies one step to every trainable parameter that has a gradient; see ``Optimizer/update(_:)``.
    public func update(_ parameters: [Parameter]) {
        let rate = currentLearningRate
        let decay = 1 - rate * weightDecay
        let momentum = self.momentum, isNesterov = usesNesterovMomentum
        for item in clippedGradients(of: parameters, clipping: clipping) {
            let clip = item.clip
            guard momentum > 0 else {
                item.withBuffers { value, gradient, count in
                    Lanes.forEachBlock(count: count) { offset, width in
                        let g = clip(Lanes.load(gradient, offset, width))
                        Lanes.store(Lanes.load(value, offset, width) * decay - rate * g, value, offset, width)
                    }
                }
                continue
            }
            let state = velocities.slots(for: item.parameter)
            state.step += 1
            let velocity = state.buffers[0]
            item.withBuffers { value, gradient, count in
                SGD.step(value, gradient, velocity, count: count, clip: clip, rate: rate, decay: decay,
                         momentum: momentum, isNesterov: isNesterov)
            }
        }
        iterations += 1
    }

    /// The momentum update over one parameter's buffers.
    private static func step(_ value: UnsafeMutablePointer<Float>, _ gradient: UnsafePointer<Float>,
                             _ velocity: UnsafeMutablePointer<Float>, count: Int, clip: Lanes.Clip,
                             rate: Float, decay: Float, momentum: Float, isNesterov: Bool) {
        Lanes.forEachBlock(count: count) { offset, width in
            let step = rate * clip(Lanes.load(gradient, offset, width))
            let v = momentum * Lanes.load(velocity, offset, width) - step
            Lanes.store(v, velocity, offset, width)
            let p = Lanes.load(value, offset, width) * decay + (isNesterov ? momentum * v - step : v)
            Lanes.store(p, value, offset, width)
        }
    }

    /// Forgets every parameter's velocity and sets ``iterations`` to 0.
    public func reset() {
        velocities.removeAll()
        iterations = 0
    }
}
