import Graph

/// A rule that moves parameters against their gradients, keeping whatever state it needs per parameter.
///
/// Call ``update(_:)`` once per training step after `Tape.backward(from:)`; it reads each parameter's
/// accumulated gradient and leaves it in place, so zero the gradients (`Parameter.zeroGradient()`)
/// before the next backward pass.
///
/// Every optimizer skips, untouched and with its state untouched, a parameter that is not trainable or whose
/// gradient is `nil`; its per-parameter step count (Adam's bias correction) does not advance either.
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
}

extension Optimizer {
    /// The learning rate the next ``update(_:)`` uses: the schedule's value at ``iterations``, if any.
    public var currentLearningRate: Float {
        schedule?.learningRate(atStep: iterations) ?? learningRate
    }
}

// MARK: - Shared machinery

/// One parameter's gradient as an update sees it: the stored gradient times `scale`, clamped to ±`limit`.
///
/// Clipping is folded into each optimizer's element loop through these two numbers, so clipping neither
/// copies the gradient nor changes what the parameter holds.
struct ClippedGradient {
    let parameter: Parameter
    let gradient: Tensor
    let scale: Float
    let limit: Float

    /// Returns the element as the update should use it.
    @inline(__always)
    func clip(_ element: Float) -> Float {
        Swift.min(Swift.max(element * scale, -limit), limit)
    }

    /// Calls `body` with the parameter's value (writable), its gradient and their element count.
    func withBuffers(_ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
        let parameter = self.parameter
        precondition(gradient.shape == parameter.value.shape,
                     "\(parameter.name): gradient shape \(gradient.shape) differs from value shape \(parameter.value.shape)")
        gradient.withUnsafeBufferPointer { gradient in
            parameter.value.withUnsafeMutableBufferPointer { value in
                guard let valueBase = value.baseAddress, let gradientBase = gradient.baseAddress else { return }
                body(valueBase, gradientBase, value.count)
            }
        }
    }
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

/// An optimizer's state for one parameter: `slotCount` buffers shaped like the parameter, plus a step count.
///
/// Raw buffers rather than tensors so that the element loops take plain pointers, with no
/// uniqueness check per buffer per step.
final class ParameterSlots {
    /// The parameter this state belongs to; a table entry whose owner is gone is stale.
    weak var owner: Parameter?
    /// The number of elements of each buffer.
    let count: Int
    /// The buffers, each `count` floats.
    let buffers: [UnsafeMutablePointer<Float>]
    /// How many updates this parameter has received.
    var step = 0

    init(owner: Parameter, slotCount: Int, initialValue: Float) {
        self.owner = owner
        count = owner.value.count
        buffers = (0..<slotCount).map { _ in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(owner.value.count, 1))
            buffer.initialize(repeating: initialValue, count: owner.value.count)
            return buffer
        }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }
}

/// Per-parameter optimizer state, keyed by parameter identity.
struct SlotTable {
    private var entries: [ObjectIdentifier: ParameterSlots] = [:]
    /// The number of buffers each parameter gets.
    let slotCount: Int
    /// The value every buffer starts from.
    let initialValue: Float

    init(slotCount: Int, initialValue: Float = 0) {
        self.slotCount = slotCount
        self.initialValue = initialValue
    }

    /// Returns the state of `parameter`, creating it on first use or when the parameter changed size.
    mutating func slots(for parameter: Parameter) -> ParameterSlots {
        let key = ObjectIdentifier(parameter)
        // An identifier can be reused by a new object once the old one is freed, hence the owner check.
        if let existing = entries[key], existing.owner === parameter, existing.count == parameter.value.count {
            return existing
        }
        entries = entries.filter { $0.value.owner != nil }
        let fresh = ParameterSlots(owner: parameter, slotCount: slotCount, initialValue: initialValue)
        entries[key] = fresh
        return fresh
    }

    /// Forgets all state.
    mutating func removeAll() { entries.removeAll() }
}
