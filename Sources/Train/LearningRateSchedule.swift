import Foundation
import Graph

/// A learning rate that changes with the optimizer's step count.
///
/// An optimizer with a schedule asks it for the rate at its ``Optimizer/iterations`` before each update,
/// so the first update uses step 0 (as in Keras).
public protocol LearningRateSchedule {
    /// Returns the learning rate for the update at `step` (0 for the first update).
    func learningRate(atStep step: Int) -> Float
}

/// A learning rate that shrinks by `decayRate` every `decaySteps` steps, smoothly or in stairs
/// (Keras' `ExponentialDecay`):
/// ```
/// rate(step) = initialLearningRate · decayRate^(step / decaySteps)     (staircase: ⌊step / decaySteps⌋)
/// ```
public struct ExponentialDecay: LearningRateSchedule, Sendable, Equatable {
    /// The rate at step 0.
    public var initialLearningRate: Float
    /// The number of steps over which the rate is multiplied by ``decayRate`` once.
    public var decaySteps: Int
    /// The factor applied every ``decaySteps`` steps.
    public var decayRate: Float
    /// Whether the exponent is rounded down, so the rate changes only every ``decaySteps`` steps.
    public var isStaircase: Bool

    /// Creates a schedule; `decaySteps` must be positive.
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) {
        check(decaySteps > 0, "ExponentialDecay: decaySteps must be positive, got \(decaySteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.decayRate = decayRate
        self.isStaircase = staircase
    }

    /// Returns `initialLearningRate · decayRate^(step / decaySteps)`, the exponent floored in staircase mode.
    public func learningRate(atStep step: Int) -> Float {
        var exponent = Double(step) / Double(decaySteps)
        if isStaircase { exponent.round(.down) }
        return Float(Double(initialLearningRate) * pow(Double(decayRate), exponent))
    }
}

/// A learning rate multiplied by `factor` every `decaySteps` steps (PyTorch's `StepLR`; the same as
/// ``ExponentialDecay`` with `staircase: true`, under the name most step-decay recipes use):
/// ```
/// rate(step) = initialLearningRate · factor^⌊step / decaySteps⌋
/// ```
public struct StepDecay: LearningRateSchedule, Sendable, Equatable {
    /// The rate at step 0.
    public var initialLearningRate: Float
    /// The number of steps between two drops.
    public var decaySteps: Int
    /// What each drop multiplies the rate by (`0.5` halves it).
    public var factor: Float

    /// Creates a schedule; `decaySteps` must be positive.
    public init(initialLearningRate: Float, decaySteps: Int, factor: Float) {
        check(decaySteps > 0, "StepDecay: decaySteps must be positive, got \(decaySteps)")
        self.initialLearningRate = initialLearningRate
        self.decaySteps = decaySteps
        self.factor = factor
    }

    /// Returns `initialLearningRate · factor^⌊step / decaySteps⌋`.
    public func learningRate(atStep step: Int) -> Float {
        let drops = step >= 0 ? step / decaySteps : 0
        return Float(Double(initialLearningRate) * pow(Double(factor), Double(drops)))
    }
}

/// A learning rate that is constant between step boundaries (Keras' `PiecewiseConstantDecay`):
/// `values[0]` up to and including step `boundaries[0]`, `values[1]` up to `boundaries[1]`, and so on,
/// and the last value after the last boundary.
public struct PiecewiseConstantDecay: LearningRateSchedule, Sendable, Equatable {
    /// The steps after which the rate changes, strictly increasing.
    public let boundaries: [Int]
    /// The rates, one more than there are boundaries.
    public let values: [Float]

    /// Creates a schedule, or throws when `values` does not hold one more rate than `boundaries`
    /// or the boundaries do not increase.
    public init(boundaries: [Int], values: [Float]) throws(ScheduleError) {
        guard values.count == boundaries.count + 1 else {
            throw .valueCountMismatch(boundaryCount: boundaries.count, valueCount: values.count)
        }
        for index in boundaries.indices.dropFirst() where boundaries[index] <= boundaries[index - 1] {
            throw .boundariesNotIncreasing(index: index, previous: boundaries[index - 1], value: boundaries[index])
        }
        self.boundaries = boundaries
        self.values = values
    }

    /// Returns the value of the interval that holds `step`.
    public func learningRate(atStep step: Int) -> Float {
        let interval = boundaries.firstIndex { step <= $0 } ?? boundaries.count
        return values[interval]
    }
}

/// A schedule's configuration is inconsistent.
public enum ScheduleError: Error, Equatable, CustomStringConvertible {
    /// A piecewise schedule needs one more value than boundaries.
    case valueCountMismatch(boundaryCount: Int, valueCount: Int)
    /// A boundary is not larger than the one before it.
    case boundariesNotIncreasing(index: Int, previous: Int, value: Int)

    /// A sentence naming the problem with expected and actual numbers.
    public var description: String {
        switch self {
        case .valueCountMismatch(let boundaryCount, let valueCount):
            "PiecewiseConstantDecay: \(boundaryCount) boundaries need \(boundaryCount + 1) values, got \(valueCount)"
        case .boundariesNotIncreasing(let index, let previous, let value):
            "PiecewiseConstantDecay: boundary \(index) is \(value), not larger than the previous boundary \(previous)"
        }
    }
}
