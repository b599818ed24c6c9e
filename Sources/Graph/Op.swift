/// The closed list of primitive operations a ``Tape`` records, with their static arguments.
///
/// Composite operations (mean, mean squared error, cross-entropy, a whole LSTM step) are built
/// from these and need no gradient rule of their own. Every rule lives in `Gradients.swift`.
public enum Op: Sendable, Equatable {
    /// A leaf holding data that receives no gradient.
    case constant
    /// A leaf holding data that receives a gradient (read it with ``Tape/gradient(of:)``).
    case variable
    /// A leaf bound to a ``Parameter``; its gradient is added to the parameter's after backward.
    case parameter
    /// An element-wise function of one input.
    case unary(UnaryFunction)
    /// An element-wise function of two inputs, broadcasting numpy-style.
    case binary(BinaryFunction)
    /// `x * scale + shift` with scalar constants.
    case affine(scale: Float, shift: Float)
    /// `min(max(x, lower), upper)`.
    case clamp(lower: Float, upper: Float)
    /// The matrix product `op(a) · op(b)` of two rank-2 inputs, each optionally transposed in place.
    case matmul(transposeA: Bool, transposeB: Bool)
    /// The product `x · matrix` of a rank-2 input and a fixed sparse matrix (no gradient for the matrix).
    case sparseMatmul(SparseMatrix)
    /// Axes reordered: axis `i` of the output is axis `permutation[i]` of the input.
    case transpose(permutation: [Int])
    /// The same elements with another shape.
    case reshape
    /// The elements whose index along `axis` lies in `range`.
    case slice(axis: Int, range: Range<Int>)
    /// The inputs joined along `axis`.
    case concat(axis: Int)
    /// The sum over `axes` (the output's shape says whether they were kept).
    case sum(axes: [Int])
    /// A stable log-softmax along `axis`.
    case logSoftmax(axis: Int)
    /// A stable softmax along `axis`.
    case softmax(axis: Int)
    /// Rows `indices` of a rank-2 table (an embedding lookup).
    case gather(indices: [Int])
    /// The input's value with no gradient flowing back (detach).
    case stopGradient
    /// The outputs of a function recorded as one node and run again in the backward pass
    /// (``Tape/checkpoint(_:body:)``); several outputs are flattened and joined.
    case checkpoint(CheckpointedFunction)

    /// A short name for inspection and DOT labels (`"tanh"`, `"matmul"`, `"slice"`).
    public var name: String {
        switch self {
        case .constant: "constant"
        case .variable: "variable"
        case .parameter: "parameter"
        case .unary(let function): function.rawValue
        case .binary(let function): function.rawValue
        case .affine: "affine"
        case .clamp: "clamp"
        case .matmul(let transposeA, let transposeB):
            "matmul" + (transposeA ? "ᵀ" : "") + (transposeB ? "·ᵀ" : "")
        case .sparseMatmul: "sparseMatmul"
        case .transpose: "transpose"
        case .reshape: "reshape"
        case .slice: "slice"
        case .concat: "concat"
        case .sum: "sum"
        case .logSoftmax: "logSoftmax"
        case .softmax: "softmax"
        case .gather: "gather"
        case .stopGradient: "stopGradient"
        case .checkpoint: "checkpoint"
        }
    }

    /// Whether this op is a leaf (it has no inputs).
    public var isLeaf: Bool {
        switch self {
        case .constant, .variable, .parameter: true
        default: false
        }
    }
}
