import Graph
import Kernels

/// How an optimizer limits gradients before using them (Keras' `global_clipnorm`, `clipnorm`, `clipvalue`).
///
/// Only trainable parameters that have a gradient take part. Norms are L2 norms:
/// ```
/// byGlobalNorm(c):  g ← g · c / max(‖(g₁, g₂, …)‖, c)   one factor for all parameters together
/// byNorm(c):        g ← g · c / max(‖g‖, c)             one factor per parameter
/// byValue(c):       g ← min(max(g, −c), c)              element by element
/// ```
public enum GradientClipping: Sendable, Equatable {
    /// Scales all gradients by one factor so that their combined norm is at most the limit.
    case byGlobalNorm(Float)
    /// Scales each parameter's gradient so that its norm is at most the limit.
    case byNorm(Float)
    /// Clamps every gradient element to `[-limit, limit]`.
    case byValue(Float)

    /// Clips the gradients of `parameters` in place, for training loops that clip without an optimizer.
    ///
    /// Optimizers with ``Optimizer/clipping`` set do not need this: they clip as they read, leaving the
    /// stored gradients as they are.
    public func clipGradients(of parameters: [Parameter]) {
        for item in clippedGradients(of: parameters, clipping: self) where item.scale != 1 || item.limit.isFinite {
            var gradient = item.gradient
            item.parameter.gradient = nil  // so the buffer below is uniquely owned and written in place
            gradient.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                unroll_clip(base, buffer.count, unroll_update(scale: item.scale, limit: item.limit, rate: 0, decay: 1))
            }
            item.parameter.gradient = gradient
        }
    }

    /// Returns, for each gradient, the scale to multiply it by and the bound to clamp it to.
    func factors(for gradients: [Tensor]) -> [(scale: Float, limit: Float)] {
        switch self {
        case .byGlobalNorm(let limit):
            let norm = Float(gradients.reduce(0) { $0 + sumOfSquares($1) }.squareRoot())
            let scale = norm > limit ? limit / norm : 1
            return Array(repeating: (scale, .infinity), count: gradients.count)
        case .byNorm(let limit):
            return gradients.map { gradient in
                let norm = Float(sumOfSquares(gradient).squareRoot())
                return (norm > limit ? limit / norm : 1, .infinity)
            }
        case .byValue(let limit):
            return Array(repeating: (1, limit), count: gradients.count)
        }
    }
}

/// Returns the L2 norm of the gradients of all trainable parameters together (parameters whose gradient
/// is `nil` count as zero): the number ``GradientClipping/byGlobalNorm(_:)`` compares with its limit.
public func globalGradientNorm(of parameters: [Parameter]) -> Float {
    var seen = Set<ObjectIdentifier>()
    var sum: Double = 0
    for parameter in parameters where parameter.isTrainable {
        guard let gradient = parameter.gradient, seen.insert(ObjectIdentifier(parameter)).inserted else { continue }
        sum += sumOfSquares(gradient)
    }
    return Float(sum.squareRoot())
}

/// Returns the sum of squared elements, accumulated in `Double` so that a million-element sum keeps its digits.
func sumOfSquares(_ tensor: Tensor) -> Double {
    tensor.withUnsafeBufferPointer { buffer in
        buffer.baseAddress.map { unroll_sum_of_squares($0, buffer.count) } ?? 0
    }
}
