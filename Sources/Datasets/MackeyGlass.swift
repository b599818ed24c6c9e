import Foundation
import Graph

/// The Mackey-Glass delay differential equation, the classic chaotic benchmark for reservoir computing.
///
/// ```
/// dx/dt = β · x(t − τ) / (1 + x(t − τ)ⁿ) − γ · x(t)
/// ```
/// With the default `β = 0.2`, `γ = 0.1`, `n = 10` the series is chaotic from `τ = 17` on and stays
/// in about `0.2…1.4`.
public enum MackeyGlass {
    /// Returns `length` samples of a Mackey-Glass series, one every `timeStep` time units.
    ///
    /// The equation is integrated with the classic fourth-order Runge-Kutta method and a fixed step of
    /// `timeStep / ceil(timeStep / integrationStep)` (0.1 by default), from the constant history
    /// `x(t) = initialValue` for `t ≤ 0`. The delayed value at a step's midpoint, which falls between
    /// stored steps, is linearly interpolated from the stored history (as is `x(t − τ)` when `τ` is
    /// not a whole number of steps). The first `discard` samples, the transient that still remembers
    /// the artificial constant history, are dropped. The result is the same on every run and platform.
    public static func series(length: Int, tau: Int = 17, beta: Double = 0.2, gamma: Double = 0.1,
                              exponent: Double = 10, timeStep: Double = 1, initialValue: Double = 1.2,
                              discard: Int = 1000, integrationStep: Double = 0.1) -> [Float] {
        check(length >= 0 && discard >= 0, "MackeyGlass: length and discard must not be negative")
        check(timeStep > 0 && integrationStep > 0, "MackeyGlass: steps must be positive")
        check(tau > 0, "MackeyGlass: tau must be positive, got \(tau)")
        let substeps = Swift.max(1, Int((timeStep / integrationStep).rounded(.up)))
        let h = timeStep / Double(substeps)
        // The delay in integration steps; RK4 reads x(t − τ + h) at most, which must already be known.
        let delay = Double(tau) / h
        check(delay >= 1, "MackeyGlass: tau \(tau) is shorter than the integration step \(h)")
        let totalSteps = (discard + length) * substeps
        var history = [Double](repeating: 0, count: totalSteps + 1)
        history[0] = initialValue
        var samples: [Float] = []
        samples.reserveCapacity(length)
        if discard == 0 && length > 0 { samples.append(Float(initialValue)) }

        func production(_ delayed: Double) -> Double {
            beta * delayed / (1 + pow(delayed, exponent))
        }
        // x at fractional step `position`; the history before step 0 is the constant initial value.
        func value(at position: Double) -> Double {
            if position <= 0 { return initialValue }
            let lower = Int(position.rounded(.down))
            let fraction = position - Double(lower)
            return fraction == 0 ? history[lower] : history[lower] + fraction * (history[lower + 1] - history[lower])
        }
        for k in 0..<totalSteps {
            let current = history[k]
            let start = Double(k) - delay
            let middle = production(value(at: start + 0.5))
            let k1 = production(value(at: start)) - gamma * current
            let k2 = middle - gamma * (current + 0.5 * h * k1)
            let k3 = middle - gamma * (current + 0.5 * h * k2)
            let k4 = production(value(at: start + 1)) - gamma * (current + h * k3)
            history[k + 1] = current + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            let step = k + 1
            if step % substeps == 0 {
                let sample = step / substeps
                if sample >= discard && sample < discard + length { samples.append(Float(history[step])) }
            }
        }
        return samples
    }
}
