import Graph
#if arch(x86_64)
import _Builtin_intrinsics.intel
#endif

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

    /// Calls `body` with the parameter's value (writable), its gradient and their element count.
    func withBuffers(_ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
        let parameter = self.parameter
        check(gradient.shape == parameter.value.shape,
                     "\(parameter.name): gradient shape \(gradient.shape) differs from value shape \(parameter.value.shape)")
        gradient.withUnsafeBufferPointer { gradient in
            parameter.value.withUnsafeMutableBufferPointer { value in
                guard let valueBase = value.baseAddress, let gradientBase = gradient.baseAddress else { return }
                body(valueBase, gradientBase, value.count)
            }
        }
    }

    /// The clipping as vector operations.
    var clip: Lanes.Clip { Lanes.Clip(scale: scale, limit: limit) }
}

/// Element loops written over SIMD vectors rather than left to the auto-vectorizer, which cannot prove that
/// the parameter, gradient and state buffers do not overlap, and which keeps any loop with a square root
/// scalar on Linux, where `Float.squareRoot()` compiles to a C `sqrtf` call that may set `errno`.
/// On x86-64 the square root, minimum and maximum are therefore SSE instructions.
enum Lanes {
    /// The vector every update works on: one SSE register.
    typealias Vector = SIMD4<Float>

    /// Gradient clipping as the element loops apply it: multiply by `scale`, then clamp to ±`limit`.
    struct Clip {
        let scale: Vector
        let upper: Vector
        let lower: Vector

        init(scale: Float, limit: Float) {
            self.scale = Vector(repeating: scale)
            upper = Vector(repeating: limit)
            lower = -upper
        }

        /// Returns the clipped gradient lanes (a NaN stays NaN).
        @inline(__always)
        func callAsFunction(_ gradient: Vector) -> Vector {
            minimum(upper, maximum(lower, gradient * scale))
        }
    }

    /// Returns the lane-wise square root.
    @inline(__always)
    static func squareRoot(_ x: Vector) -> Vector {
        #if arch(x86_64)
        _mm_sqrt_ps(x)
        #else
        x.squareRoot()
        #endif
    }

    /// Returns the lane-wise maximum, or `b`'s lane where either is NaN, so NaNs in `b` propagate.
    @inline(__always)
    static func maximum(_ a: Vector, _ b: Vector) -> Vector {
        #if arch(x86_64)
        _mm_max_ps(a, b)
        #else
        b.replacing(with: a, where: a .> b)
        #endif
    }

    /// Returns the lane-wise minimum, or `b`'s lane where either is NaN, so NaNs in `b` propagate.
    @inline(__always)
    static func minimum(_ a: Vector, _ b: Vector) -> Vector {
        #if arch(x86_64)
        _mm_min_ps(a, b)
        #else
        b.replacing(with: a, where: a .< b)
        #endif
    }

    /// Calls `body(offset, width)` for consecutive blocks covering `0..<count`: full blocks of
    /// `Vector.scalarCount`, then one shorter block for the rest.
    @inline(__always)
    static func forEachBlock(count: Int, _ body: (Int, Int) -> Void) {
        let width = Vector.scalarCount
        var offset = 0
        while offset + width <= count {
            body(offset, width)
            offset += width
        }
        if offset < count { body(offset, count - offset) }
    }

    /// Returns `width` elements from `offset`, the unused lanes zero.
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, _ offset: Int, _ width: Int) -> Vector {
        if width == Vector.scalarCount { return UnsafeRawPointer(pointer + offset).loadUnaligned(as: Vector.self) }
        var lanes = Vector()
        for lane in 0..<width { lanes[lane] = pointer[offset + lane] }
        return lanes
    }

    /// Returns `width` elements from `offset`, the unused lanes zero.
    @inline(__always)
    static func load(_ pointer: UnsafeMutablePointer<Float>, _ offset: Int, _ width: Int) -> Vector {
        load(UnsafePointer(pointer), offset, width)
    }

    /// Writes the first `width` lanes at `offset`.
    @inline(__always)
    static func store(_ lanes: Vector, _ pointer: UnsafeMutablePointer<Float>, _ offset: Int, _ width: Int) {
        if width == Vector.scalarCount {
            UnsafeMutableRawPointer(pointer + offset).storeBytes(of: lanes, as: Vector.self)
            return
        }
        for lane in 0..<width { pointer[offset + lane] = lanes[lane] }
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
