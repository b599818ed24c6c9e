// The differentiable operations on nodes. Each computes its value with the Tensor kernels and
// records one primitive ``Op``; composites are built from these.

extension Node {
    func unary(_ function: UnaryFunction) -> Node {
        Node.make(.unary(function), self, value.map(function))
    }

    func binary(_ other: Node, _ function: BinaryFunction) -> Node {
        Node.make(.binary(function), self, other, value.combined(with: other.value, function))
    }

    /// Returns `self * scale + shift` element-wise.
    public func affine(scale: Float, shift: Float) -> Node {
        Node.make(.affine(scale: scale, shift: shift), self, value.affine(scale: scale, shift: shift))
    }

    /// Returns the element-wise sum, broadcasting.
    public static func + (lhs: Node, rhs: Node) -> Node { lhs.binary(rhs, .add) }
    /// Returns the element-wise difference, broadcasting.
    public static func - (lhs: Node, rhs: Node) -> Node { lhs.binary(rhs, .subtract) }
    /// Returns the element-wise (Hadamard) product, broadcasting.
    public static func * (lhs: Node, rhs: Node) -> Node { lhs.binary(rhs, .multiply) }
    /// Returns the element-wise quotient, broadcasting.
    public static func / (lhs: Node, rhs: Node) -> Node { lhs.binary(rhs, .divide) }
    /// Returns the negation.
    public static prefix func - (node: Node) -> Node { node.unary(.negate) }
    /// Returns the node plus a scalar.
    public static func + (lhs: Node, rhs: Float) -> Node { lhs.affine(scale: 1, shift: rhs) }
    /// Returns a scalar plus the node.
    public static func + (lhs: Float, rhs: Node) -> Node { rhs.affine(scale: 1, shift: lhs) }
    /// Returns the node minus a scalar.
    public static func - (lhs: Node, rhs: Float) -> Node { lhs.affine(scale: 1, shift: -rhs) }
    /// Returns a scalar minus the node (`1 - z` in a GRU).
    public static func - (lhs: Float, rhs: Node) -> Node { rhs.affine(scale: -1, shift: lhs) }
    /// Returns the node times a scalar.
    public static func * (lhs: Node, rhs: Float) -> Node { lhs.affine(scale: rhs, shift: 0) }
    /// Returns a scalar times the node.
    public static func * (lhs: Float, rhs: Node) -> Node { rhs.affine(scale: lhs, shift: 0) }
    /// Returns the node divided by a scalar.
    public static func / (lhs: Node, rhs: Float) -> Node { lhs.affine(scale: 1 / rhs, shift: 0) }

    /// Returns every element clamped to `range`; the gradient flows only where the input lies inside it.
    public func clamped(to range: ClosedRange<Float>) -> Node {
        Node.make(.clamp(lower: range.lowerBound, upper: range.upperBound), self, value.clamped(to: range))
    }

    /// Returns the matrix product of two rank-2 nodes, either optionally transposed (read in place).
    public func matmul(_ other: Node, transposingSelf: Bool = false, transposingOther: Bool = false) -> Node {
        Node.make(.matmul(transposeA: transposingSelf, transposeB: transposingOther), self, other,
                  productValue(other, transposingSelf: transposingSelf, transposingOther: transposingOther))
    }

    /// Returns the same elements with a new shape (one dimension may be `-1`).
    public func reshaped(to shape: [Int]) -> Node {
        let result = value.reshaped(to: shape)
        if result.shape == value.shape { return self }
        return Node.make(.reshape, self, result)
    }

    /// Returns the transpose of a rank-2 node.
    public func transposed() -> Node { transposed(permutation: [1, 0]) }

    /// Returns the node with its axes reordered: axis `i` of the result is axis `permutation[i]` of `self`.
    public func transposed(permutation: [Int]) -> Node {
        Node.make(.transpose(permutation: permutation), self, value.transposed(permutation: permutation))
    }

    /// Returns the elements whose index along `axis` lies in `range`.
    public func slice(along axis: Int, _ range: Range<Int>) -> Node {
        Node.make(.slice(axis: axis, range: range), self, value.slice(along: axis, range))
    }

    /// Returns the sum over `axes`.
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Node {
        Node.make(.sum(axes: axes), self, value.sum(alongAxes: axes, keepingDimensions: keepingDimensions))
    }

    /// Returns the sum of all elements (a scalar node).
    public func sum() -> Node { sum(alongAxes: Array(0..<shape.count)) }

    /// Returns the mean over `axes` (a sum and a scale).
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Node {
        let n = Set(axes).reduce(1) { $0 * shape[$1] }
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(max(n, 1)))
    }

    /// Returns the mean of all elements (a scalar node).
    public func mean() -> Node { mean(alongAxes: Array(0..<shape.count)) }

    /// Returns the stable log-softmax along `axis`.
    public func logSoftmax(alongAxis axis: Int) -> Node {
        Node.make(.logSoftmax(axis: axis), self, value.logSoftmax(alongAxis: axis))
    }

    /// Returns the stable softmax along `axis`.
    public func softmax(alongAxis axis: Int) -> Node {
        Node.make(.softmax(axis: axis), self, value.softmax(alongAxis: axis))
    }

    /// Returns the same value with no gradient flowing back through it (detach).
    ///
    /// Truncated backpropagation through time carries the state between chunks this way.
    public func stoppingGradient() -> Node {
        Node.make(.stopGradient, self, value)
    }

    /// Returns rows `indices` of this rank-2 table (an embedding lookup): shape `[indices.count, columns]`.
    public func gatheringRows(_ indices: [Int]) -> Node {
        check(shape.count == 2, "gatheringRows: needs a rank-2 table, got \(shape)")
        return Node.make(.gather(indices: indices), self, value.gathering(indices, along: 0))
    }
}

/// Returns the nodes joined along `axis`.
public func concatenate(_ nodes: [Node], along axis: Int) -> Node {
    Node.make(.concat(axis: axis), nodes, Tensor.concatenate(nodes.map(\.value), along: axis))
}

/// Returns the matrix product: rank 2 × rank 2, or `[batch, m, k]` × `[k, n]` → `[batch, m, n]`.
public func matmul(_ a: Node, _ b: Node) -> Node {
    if a.shape.count == 3 && b.shape.count == 2 {
        return a.reshaped(to: [a.shape[0] * a.shape[1], a.shape[2]]).matmul(b)
            .reshaped(to: [a.shape[0], a.shape[1], b.shape[1]])
    }
    return a.matmul(b)
}

/// Returns the logistic sigmoid `1 / (1 + e^-x)` element-wise.
public func sigmoid(_ x: Node) -> Node { x.unary(.sigmoid) }
/// Returns the hyperbolic tangent element-wise.
public func tanh(_ x: Node) -> Node { x.unary(.tanh) }
/// Returns `e^x` element-wise.
public func exp(_ x: Node) -> Node { x.unary(.exp) }
/// Returns the natural logarithm element-wise.
public func log(_ x: Node) -> Node { x.unary(.log) }
/// Returns `max(x, 0)` element-wise.
public func relu(_ x: Node) -> Node { x.unary(.relu) }
/// Returns `x²` element-wise.
public func square(_ x: Node) -> Node { x.unary(.square) }
/// Returns the square root element-wise.
public func sqrt(_ x: Node) -> Node { x.unary(.sqrt) }
/// Returns the absolute value element-wise.
public func abs(_ x: Node) -> Node { x.unary(.abs) }
