import Graph
import Kernels

/// A rule that moves parameters against their gradients, keeping whatever state it needs per parameter.
///
/// Call ``update(_:)`` once per training step after `Tape.backward(from:)`; it reads each parameter's
/// accumulated gradient and leaves it in place, so zero the gradients (`Parameter.zeroGradient()`)
/// before the next backward pass.
///
/// A parameter that is not trainable or whose gradient is `nil` is skipped: its value and its optimizer
/// state stay as they are, and its own step count (Adam's bias correction) does not advance.
/// ``iterations`` advances once per call regardless.
public protocol Optimizer: AnyObject {
    /// The base learning rate (a ``schedule``, when set, overrides it per step).
    var learningRate: Float { get set }
    /// The learning rate as a function of ``iterations``, or `nil` to use ``learningRate`` at every step.
    var schedule: (any LearningRateSchedule)? { get set }
    /// How gradients are clipped before they are used, or `nil` to use them as they are.
    var clipping: GradientClipping? { get set }
    /// The number of updates applied so far (Keras' `iterations`); the schedule is read at this step.
    var iterations: Int { get set }
    /// Applies one update to every trainable parameter that has a gradient, after gradient clipping.
    ///
    /// A parameter listed twice is updated once. Gradients are read, not changed, and not zeroed.
    func update(_ parameters: [Parameter])
    /// Forgets all per-parameter state and sets ``iterations`` to 0, as if newly created.
    func reset()
    /// Throws ``TrainingError/invalidArgument(name:value:reason:)`` naming the first setting out of range.
    ///
    /// `Sequential.compile` calls it, so a model never trains with, say, `Adam(beta1: 1)`. The default checks
    /// ``learningRate`` and ``clipping``.
    func checkSettings() throws(TrainingError)
}

extension Optimizer {
    /// The learning rate the next ``update(_:)`` uses: the schedule's value at ``iterations``, if any.
    public var currentLearningRate: Float {
        schedule?.learningRate(atStep: iterations) ?? learningRate
    }

    /// Checks ``learningRate`` (finite, not negative) and ``clipping`` (a positive limit).
    public func checkSettings() throws(TrainingError) {
        try checkSharedSettings(weightDecay: 0)
    }

    /// Checks the settings every built-in optimizer has: the learning rate, the weight decay and the clipping.
    func checkSharedSettings(weightDecay: Float) throws(TrainingError) {
        try checkSetting("learningRate", learningRate, learningRate.isFinite && learningRate >= 0,
                  "must be finite and not negative")
        try checkSetting("weightDecay", weightDecay, weightDecay.isFinite && weightDecay >= 0, "must be finite and not negative")
        switch clipping {
        case .byGlobalNorm(let limit), .byNorm(let limit), .byValue(let limit):
            try checkSetting("clipping", limit, limit > 0, "the limit must be positive")
        case nil:
            break
        }
    }

    /// Throws ``TrainingError/invalidArgument(name:value:reason:)`` for `Type.name` unless `isValid`.
    func checkSetting(_ name: String, _ value: Float, _ isValid: Bool, _ reason: String) throws(TrainingError) {
        guard isValid else { throw .invalidArgument(name: "\(type(of: self)).\(name)", value: "\(value)", reason: reason) }
    }

    /// The update loop every optimizer runs, with `rule` the only part that differs: picks the trainable
    /// parameters that have a gradient (each once), works out the clipping, advances each parameter's step
    /// count, and hands `rule` a run of one parameter's value, gradient and `slotCount` state arrays at a time
    /// (``runUpdates(_:rule:)`` may cut a large parameter into several runs, so `rule` must be element-wise);
    /// then advances ``iterations``. Traps, naming the setting, if ``checkSettings()`` throws (`compile` has
    /// already reported it for a model).
    func applyUpdate(to parameters: [Parameter], states: ParameterStates, slotCount: Int, weightDecay: Float,
                     rule: (OptimizerStep) -> Void) {
        do { try checkSettings() } catch { checkFailed("\(error)") }
        let rate = currentLearningRate
        let decay = 1 - rate * weightDecay
        let items = clippedGradients(of: parameters, clipping: clipping)
        var steps: [OptimizerStep] = []
        steps.reserveCapacity(items.count)
        for item in items {
            let parameter = item.parameter
            check(item.gradient.shape == parameter.value.shape,
                  "\(parameter.name): gradient shape \(item.gradient.shape) differs from value shape \(parameter.value.shape)")
            let state = states.state(for: parameter, slotCount: slotCount)
            state.step += 1
            // The pointers outlive the accessors: each tensor's elements live in a heap buffer that `items`,
            // the parameter and `states` keep alive and that nothing else touches until `runUpdates` returns;
            // the mutable accessors have already made the value and the state arrays unshared.
            let value = parameter.value.withUnsafeMutableBufferPointer { $0.baseAddress }
            let gradient = item.gradient.withUnsafeBufferPointer { $0.baseAddress }
            let slots = state.slots.withUnsafeMutableBufferPointer { $0.baseAddress }
            guard let value, let gradient else { continue }
            let count = parameter.value.count
            steps.append(OptimizerStep(value: value, gradient: gradient, slots: slots, stride: count, count: count,
                                       step: state.step,
                                       update: unroll_update(scale: item.scale, limit: item.limit, rate: rate,
                                                             decay: decay)))
        }
        withExtendedLifetime(items) { runUpdates(steps, rule: rule) }
        iterations += 1
    }
}

/// The elements of one parameter a worker updates at a time: large parameters are cut at multiples of this
/// (fixed by the shape, not the thread count) so that two threads share even one big matrix. The rules are
/// element-wise and their vector and scalar paths give the same bits, so no cut changes a result.
let updateChunk = 1 << 14

/// Runs `rule` over `steps`, on every worker thread when they hold enough elements to pay for the hand-off
/// (one fork per update, not one per parameter); the chunks are dealt out in turn, so each worker gets a
/// near-equal share whatever the parameters' sizes.
func runUpdates(_ steps: [OptimizerStep], rule: (OptimizerStep) -> Void) {
    let total = steps.reduce(0) { $0 + $1.count }
    let threads = Swift.min(GEMMThreads.count, total / (2 * updateChunk))
    guard threads > 1 else {
        steps.forEach(rule)
        return
    }
    var chunks: [OptimizerStep] = []
    chunks.reserveCapacity(total / updateChunk + steps.count)
    for step in steps {
        for start in stride(from: 0, to: step.count, by: updateChunk) {
            chunks.append(step.elements(start..<Swift.min(step.count, start + updateChunk)))
        }
    }
    withoutActuallyEscaping(rule) { escaping in
        let shared = UncheckedSendable(value: (rule: escaping, chunks: chunks))
        forkJoin(iterations: threads) { part in
            for index in stride(from: part, to: shared.value.chunks.count, by: threads) {
                shared.value.rule(shared.value.chunks[index])
            }
        }
    }
}

/// A run of one parameter's arrays as a step rule sees them, for one update.
struct OptimizerStep {
    /// The run's first element of the parameter, updated in place.
    let value: UnsafeMutablePointer<Float>
    /// Its gradient, before clipping (the kernels clip as they read).
    let gradient: UnsafePointer<Float>
    /// The run's first element of the first state array.
    let slots: UnsafeMutablePointer<Float>?
    /// The distance between state arrays: the parameter's element count.
    let stride: Int
    /// The number of elements in the run.
    let count: Int
    /// How many updates this parameter has received, counting this one (Adam's `t`).
    let step: Int
    /// The clipping, learning rate and weight-decay factor of this update.
    let update: unroll_update

    /// Returns state array `index` from the run's first element.
    func slot(_ index: Int) -> UnsafeMutablePointer<Float>? { slots.map { $0 + index * stride } }

    /// Returns the run of `range`, counted from this run's first element.
    func elements(_ range: Range<Int>) -> OptimizerStep {
        OptimizerStep(value: value + range.lowerBound, gradient: gradient + range.lowerBound,
                      slots: slots.map { $0 + range.lowerBound }, stride: stride, count: range.count, step: step,
                      update: update)
    }
}

/// One parameter's gradient as an update sees it: the stored gradient times `scale`, clamped to ±`limit`.
///
/// Clipping is folded into each optimizer's element loop through these two numbers, so clipping neither
/// copies the gradient nor changes what the parameter holds.
struct ClippedGradient {
    let parameter: Parameter
    let gradient: Tensor
    let scale: Float
    let limit: Float
}

/// Returns the gradients an update uses: trainable parameters with a gradient, each once, in order,
/// with the clipping factors worked out.
func clippedGradients(of parameters: [Parameter], clipping: GradientClipping?) -> [ClippedGradient] {
    var seen = Set<ObjectIdentifier>()
    var selected: [(Parameter, Tensor)] = []
    selected.reserveCapacity(parameters.count)
    for parameter in parameters where parameter.isTrainable {
        guard let gradient = parameter.gradient, seen.insert(ObjectIdentifier(parameter)).inserted else { continue }
        selected.append((parameter, gradient))
    }
    let factors = clipping?.factors(for: selected.map { $0.1 })
        ?? Array(repeating: (scale: 1, limit: .infinity), count: selected.count)
    return zip(selected, factors).map { pair, factor in
        ClippedGradient(parameter: pair.0, gradient: pair.1, scale: factor.scale, limit: factor.limit)
    }
}

/// An optimizer's state for one parameter: its state arrays as one tensor `[slotCount, count]`, and a step count.
final class ParameterState {
    /// The parameter this state belongs to; a table entry whose owner is gone is stale.
    weak var owner: Parameter?
    /// The state arrays, one row each.
    var slots: Tensor
    /// How many updates this parameter has received.
    var step = 0

    init(owner: Parameter, slotCount: Int, initialValue: Float) {
        self.owner = owner
        slots = Tensor(shape: [slotCount, owner.value.count], repeating: initialValue)
    }
}

/// Per-parameter optimizer state, keyed by parameter identity.
final class ParameterStates {
    private var entries: [ObjectIdentifier: ParameterState] = [:]
    /// The value every state array starts from.
    let initialValue: Float

    init(initialValue: Float = 0) {
        self.initialValue = initialValue
    }

    /// Returns the state of `parameter` with at least `slotCount` arrays, created on first use, or afresh
    /// when the parameter changed size or the optimizer now needs more arrays (SGD whose momentum was raised
    /// from 0).
    func state(for parameter: Parameter, slotCount: Int) -> ParameterState {
        let key = ObjectIdentifier(parameter)
        // An identifier can be reused by a new object once the old one is freed, hence the owner check.
        if let existing = entries[key], existing.owner === parameter, existing.slots.shape[0] >= slotCount,
           existing.slots.shape[1] == parameter.value.count {
            return existing
        }
        entries = entries.filter { $0.value.owner != nil }
        let fresh = ParameterState(owner: parameter, slotCount: slotCount, initialValue: initialValue)
        entries[key] = fresh
        return fresh
    }

    /// Forgets all state.
    func removeAll() { entries.removeAll() }
}
