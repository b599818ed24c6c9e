import Foundation
import Kernels

/// The element-wise functions of one argument that tensors and nodes share.
public enum UnaryFunction: String, Sendable, CaseIterable {
    /// `-x`, `eˣ`, the natural logarithm, `tanh`, the logistic sigmoid, `max(x, 0)`, `x²`, `√x`, `|x|`.
    case negate, exp, log, tanh, sigmoid, relu, square, sqrt, abs
}

/// The element-wise functions of two broadcast arguments.
public enum BinaryFunction: String, Sendable, CaseIterable {
    /// `a + b`, `a - b`, `a · b`, `a / b`, element by element after broadcasting.
    case add, subtract, multiply, divide
}

// MARK: - Broadcasting

/// Returns the numpy-style broadcast of two shapes, trapping with the op's name when they do not match.
func broadcastShape(_ a: [Int], _ b: [Int], op: String) -> [Int] {
    if a == b { return a }
    let rank = max(a.count, b.count)
    var result = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        check(da == db || da == 1 || db == 1,
                     "\(op): shapes \(a) and \(b) cannot be broadcast together")
        result[i] = da == 1 ? db : da
    }
    return result
}

/// Returns row-major strides of `shape` padded on the left to `rank`, with 0 on broadcast axes of `target`.
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    let rank = target.count
    var strides = [Int](repeating: 0, count: rank)
    var running = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let axis = i + rank - shape.count
        strides[axis] = shape[i] == 1 && target[axis] != 1 ? 0 : running
        running *= shape[i]
    }
    return strides
}

/// Calls `body(offsetA, offsetB, offsetOut)` for each innermost row of a broadcast over `shape`,
/// where `body` handles `shape.last` elements with steps `stridesA.last`, `stridesB.last` and 1.
@inline(__always)
func forEachRow(shape: [Int], stridesA: [Int], stridesB: [Int], _ body: (Int, Int, Int) -> Void) {
    let rank = shape.count
    guard rank > 0 else { body(0, 0, 0); return }
    let inner = shape[rank - 1]
    let rows = inner == 0 ? 0 : shape.reduce(1, *) / inner
    var index = [Int](repeating: 0, count: rank)
    var offsetA = 0, offsetB = 0
    for row in 0..<rows {
        body(offsetA, offsetB, row * inner)
        // Advance the multi-index over all but the last axis.
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            offsetA += stridesA[axis]
            offsetB += stridesB[axis]
            if index[axis] < shape[axis] { break }
            offsetA -= stridesA[axis] * shape[axis]
            offsetB -= stridesB[axis] * shape[axis]
            index[axis] = 0
            axis -= 1
        }
    }
}

// MARK: - Kernels

@inline(__always)
func applyBinary(_ function: BinaryFunction, _ a: UnsafePointer<Float>, _ sa: Int,
                 _ b: UnsafePointer<Float>, _ sb: Int, _ out: UnsafeMutablePointer<Float>, _ n: Int) {
    switch function {
    case .add:
        if sa == 1 && sb == 1 { for i in 0..<n { out[i] = a[i] + b[i] } }
        else { for i in 0..<n { out[i] = a[i * sa] + b[i * sb] } }
    case .subtract:
        if sa == 1 && sb == 1 { for i in 0..<n { out[i] = a[i] - b[i] } }
        else { for i in 0..<n { out[i] = a[i * sa] - b[i * sb] } }
    case .multiply:
        if sa == 1 && sb == 1 { for i in 0..<n { out[i] = a[i] * b[i] } }
        else { for i in 0..<n { out[i] = a[i * sa] * b[i * sb] } }
    case .divide:
        if sa == 1 && sb == 1 { for i in 0..<n { out[i] = a[i] / b[i] } }
        else { for i in 0..<n { out[i] = a[i * sa] / b[i * sb] } }
    }
}

func applyUnary(_ function: UnaryFunction, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    switch function {
    case .negate: for i in 0..<n { y[i] = -x[i] }
    case .exp: unroll_vexp(x, y, n)
    case .log: for i in 0..<n { y[i] = Foundation.log(x[i]) }
    case .tanh: unroll_vtanh(x, y, n)
    case .sigmoid: unroll_vsigmoid(x, y, n)
    case .relu: for i in 0..<n { y[i] = x[i] > 0 ? x[i] : 0 }
    case .square: for i in 0..<n { y[i] = x[i] * x[i] }
    case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
    case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
    }
}

extension Tensor {
    /// Returns `function` applied to every element.
    public func map(_ function: UnaryFunction) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let x = UncheckedSendable(value: base), y = UncheckedSendable(value: result.base)
        forEachChunk(count) { range in
            applyUnary(function, x.value + range.lowerBound, y.value + range.lowerBound, range.count)
        }
        return result
    }

    /// Returns `function(self, other)` element-wise, broadcasting the shapes numpy-style.
    public func combined(with other: Tensor, _ function: BinaryFunction) -> Tensor {
        let outShape = broadcastShape(shape, other.shape, op: function.rawValue)
        let result = Tensor(uninitializedShape: outShape)
        let a = base, b = other.base, out = result.base
        if shape == other.shape {
            let shared = UncheckedSendable(value: (a, b, out))
            forEachChunk(count) { range in
                let (a, b, out) = shared.value
                let start = range.lowerBound
                applyBinary(function, a + start, 1, b + start, 1, out + start, range.count)
            }
        } else if let width = Tensor.trailingWidth(other.shape, of: shape) {
            // `other` repeats along the leading axes (a bias row): one pass per row, rows split across threads.
            let shared = UncheckedSendable(value: (a, b, out))
            forEachChunk(count / width, minimumPerThread: Swift.max(1, (1 << 15) / width)) { rows in
                let (a, b, out) = shared.value
                for row in rows { applyBinary(function, a + row * width, 1, b, 1, out + row * width, width) }
            }
        } else if let width = Tensor.trailingWidth(shape, of: other.shape) {
            let shared = UncheckedSendable(value: (a, b, out))
            forEachChunk(other.count / width, minimumPerThread: Swift.max(1, (1 << 15) / width)) { rows in
                let (a, b, out) = shared.value
                for row in rows { applyBinary(function, a, 1, b + row * width, 1, out + row * width, width) }
            }
        } else if other.count == 1 {
            applyBinary(function, a, 1, b, 0, out, count)
        } else if count == 1 {
            applyBinary(function, a, 0, b, 1, out, other.count)
        } else {
            let sa = broadcastStrides(shape, to: outShape), sb = broadcastStrides(other.shape, to: outShape)
            let inner = outShape.last ?? 1
            let innerA = sa.last ?? 0, innerB = sb.last ?? 0
            forEachRow(shape: outShape, stridesA: sa, stridesB: sb) { oa, ob, oo in
                applyBinary(function, a + oa, innerA, b + ob, innerB, out + oo, inner)
            }
        }
        return result
    }

    /// The element count of `small` when it equals the trailing axes of `large` (leading 1s aside), so that
    /// broadcasting repeats it once per row of `large`; otherwise `nil`.
    static func trailingWidth(_ small: [Int], of large: [Int]) -> Int? {
        var trimmed = small[...]
        while trimmed.first == 1 && trimmed.count > 0 { trimmed = trimmed.dropFirst() }
        guard !trimmed.isEmpty, trimmed.count < large.count, Array(trimmed) == Array(large.suffix(trimmed.count)) else {
            return nil
        }
        return trimmed.reduce(1, *)
    }

    /// Returns every element clamped to `[lower, upper]`.
    public func clamped(to range: ClosedRange<Float>) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let x = base, y = result.base
        for i in 0..<count { y[i] = Swift.min(Swift.max(x[i], range.lowerBound), range.upperBound) }
        return result
    }

    /// Returns `self * scale + shift` element-wise.
    public func affine(scale: Float, shift: Float) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let x = base, y = result.base
        for i in 0..<count { y[i] = x[i] * scale + shift }
        return result
    }

    /// Adds `other * scale` into this tensor in place (shapes must be equal).
    public mutating func add(_ other: Tensor, scaledBy scale: Float = 1) {
        check(shape == other.shape, "add(_:scaledBy:): shapes \(shape) and \(other.shape) differ")
        let source = UncheckedSendable(value: other.base)
        withUnsafeMutableBufferPointer { buffer in
            let target = UncheckedSendable(value: buffer.baseAddress!)
            forEachChunk(buffer.count) { range in
                let x = source.value, y = target.value
                if scale == 1 { for i in range { y[i] += x[i] } } else { for i in range { y[i] += scale * x[i] } }
            }
        }
    }

    /// Returns the element-wise sum, broadcasting.
    public static func + (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.combined(with: rhs, .add) }
    /// Returns the element-wise difference, broadcasting.
    public static func - (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.combined(with: rhs, .subtract) }
    /// Returns the element-wise product, broadcasting.
    public static func * (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.combined(with: rhs, .multiply) }
    /// Returns the element-wise quotient, broadcasting.
    public static func / (lhs: Tensor, rhs: Tensor) -> Tensor { lhs.combined(with: rhs, .divide) }
    /// Returns the negation.
    public static prefix func - (tensor: Tensor) -> Tensor { tensor.map(.negate) }
    /// Returns the tensor plus a scalar.
    public static func + (lhs: Tensor, rhs: Float) -> Tensor { lhs.affine(scale: 1, shift: rhs) }
    /// Returns a scalar plus the tensor.
    public static func + (lhs: Float, rhs: Tensor) -> Tensor { rhs.affine(scale: 1, shift: lhs) }
    /// Returns the tensor minus a scalar.
    public static func - (lhs: Tensor, rhs: Float) -> Tensor { lhs.affine(scale: 1, shift: -rhs) }
    /// Returns a scalar minus the tensor.
    public static func - (lhs: Float, rhs: Tensor) -> Tensor { rhs.affine(scale: -1, shift: lhs) }
    /// Returns the tensor times a scalar.
    public static func * (lhs: Tensor, rhs: Float) -> Tensor { lhs.affine(scale: rhs, shift: 0) }
    /// Returns a scalar times the tensor.
    public static func * (lhs: Float, rhs: Tensor) -> Tensor { rhs.affine(scale: lhs, shift: 0) }
    /// Returns the tensor divided by a scalar.
    public static func / (lhs: Tensor, rhs: Float) -> Tensor { lhs.affine(scale: 1 / rhs, shift: 0) }
    /// Returns a scalar divided by the tensor, element-wise.
    public static func / (lhs: Float, rhs: Tensor) -> Tensor { Tensor(scalar: lhs).combined(with: rhs, .divide) }

    /// Returns `e^x` element-wise.
    public func exp() -> Tensor { map(.exp) }
    /// Returns the natural logarithm element-wise.
    public func log() -> Tensor { map(.log) }
    /// Returns the hyperbolic tangent element-wise.
    public func tanh() -> Tensor { map(.tanh) }
    /// Returns the logistic sigmoid `1 / (1 + e^-x)` element-wise.
    public func sigmoid() -> Tensor { map(.sigmoid) }
    /// Returns `max(x, 0)` element-wise.
    public func relu() -> Tensor { map(.relu) }
    /// Returns `x²` element-wise.
    public func squared() -> Tensor { map(.square) }
    /// Returns the square root element-wise.
    public func sqrt() -> Tensor { map(.sqrt) }
    /// Returns the absolute value element-wise.
    public func abs() -> Tensor { map(.abs) }
}
