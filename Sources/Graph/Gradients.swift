// Every backward rule, in one exhaustive switch: given the op, its inputs' values, its output
// (`result`) and the gradient of the output (`grad`), add each input's gradient into the tape.
// Broadcasting is undone centrally in `Tape.accumulate`, so no rule deals with it.
// Element-wise rules are formulas (`Op.elementwiseDerivative`) and matrix products a table of operands
// (`Op.matmulGradient`): the compiled plan (`Plan`) reads the same definitions, so no rule is written twice.

extension Tape {
    func propagate(_ index: Int, _ grad: Tensor) {
        let record = records[index]
        let inputs = record.inputs
        let result = record.value
        func input(_ i: Int) -> Tensor { records[inputs[i]].value }

        switch record.op {
        case .constant, .variable, .parameter, .stopGradient:
            break

        case .unary, .binary, .affine, .clamp:
            let op = record.op
            for k in inputs.indices where wantsGradient(inputs[k]) {
                let formula = op.elementwiseDerivative(input: k)
                accumulate(Tensor.evaluate(formula, gradient: grad, result: result, inputs: inputs.map { records[$0].value }),
                           into: inputs[k])
            }

        case .matmul(let transposeA, let transposeB):
            for k in 0..<2 {
                let (left, right, transposeLeft, transposeRight) = Op.matmulGradient(input: k, transposeA: transposeA,
                                                                                      transposeB: transposeB)
                func operand(_ which: MatmulOperand) -> Tensor { which == .gradient ? grad : input(which == .a ? 0 : 1) }
                // A value as the right operand may be a reused parameter whose packed form the tape keeps.
                let rightIndex = right == .gradient ? nil : inputs[right == .a ? 0 : 1]
                accumulateMatmul(operand(left), operand(right), transposingA: transposeLeft, transposingB: transposeRight,
                                 into: inputs[k], bIndex: rightIndex)
            }

        case .reshape, .transpose, .concat, .sum, .logSoftmax, .softmax, .gather, .sparseMatmul:
            let values = inputs.map { records[$0].value }
            for k in inputs.indices where wantsGradient(inputs[k]) {
                accumulate(Op.structuralGradient(record.op, input: k, inputs: values, result: result, grad: grad),
                           into: inputs[k])
            }

        case .slice(let axis, let range):
            accumulateSlice(grad, axis: axis, range: range, into: inputs[0])

        case .checkpoint(let function):
            let inputGradients = Op.checkpointGradients(function, inputs: inputs.map { records[$0].value },
                                                        needsGradient: inputs.map(wantsGradient), grad: grad)
            for (i, gradient) in inputGradients.enumerated() {
                if let gradient { accumulate(gradient, into: inputs[i]) }
            }
        }
    }
}

/// An operand of a matrix product's gradient: the incoming gradient or one of the product's inputs.
enum MatmulOperand: Equatable, Sendable {
    case gradient, a, b
}

extension Op {
    /// The gradients of a checkpointed function's inputs (`nil` where none is wanted): its body rebuilt on its own
    /// tape and backpropagated there; the main tape kept only the inputs and outputs.
    static func checkpointGradients(_ function: CheckpointedFunction, inputs: [Tensor], needsGradient: [Bool],
                                    grad: Tensor) -> [Tensor?] {
        // Several outputs were flattened and joined: split `grad`.
        var start = 0
        let outputGradients = function.outputShapes.map { shape -> Tensor in
            let count = shape.reduce(1, *)
            defer { start += count }
            return function.outputShapes.count == 1 ? grad : grad.slice(along: 0, start..<(start + count)).reshaped(to: shape)
        }
        return function.recompute(inputs: inputs, needsGradient: needsGradient, outputGradients: outputGradients)
    }

    /// The gradient of input `k` of a shape-moving or reducing op (everything but element-wise ops, matrix
    /// products and slices), computed from the op's input values, its result and the incoming gradient.
    static func structuralGradient(_ op: Op, input k: Int, inputs: [Tensor], result: Tensor, grad: Tensor) -> Tensor {
        switch op {
        case .reshape:
            return grad.reshaped(to: inputs[0].shape)
        case .transpose(let permutation):
            var inverse = permutation
            for (axis, source) in permutation.enumerated() { inverse[source] = axis }
            return grad.transposed(permutation: inverse)
        case .concat(let axis):
            let start = inputs[..<k].reduce(0) { $0 + $1.shape[axis] }
            return grad.slice(along: axis, start..<(start + inputs[k].shape[axis]))
        case .sum(let axes):
            var kept = inputs[0].shape
            for axis in axes { kept[axis] = 1 }
            return grad.reshaped(to: kept).broadcast(to: inputs[0].shape)
        case .logSoftmax(let axis):
            // dx = g - softmax(x) * sum(g)
            let total = grad.sum(alongAxes: [axis], keepingDimensions: true)
            return grad - result.exp() * total
        case .softmax(let axis):
            // dx = y * (g - sum(g * y))
            let total = (grad * result).sum(alongAxes: [axis], keepingDimensions: true)
            return result * (grad - total)
        case .sparseMatmul(let matrix):
            return matrix.transposedProduct(grad)
        case .gather(let indices):
            let table = inputs[0]
            let columns = table.shape[1]
            var dTable = Tensor.zeros(table.shape)
            let g = grad.base
            dTable.withUnsafeMutableBufferPointer { buffer in
                for (row, index) in indices.enumerated() {
                    let target = buffer.baseAddress! + index * columns, source = g + row * columns
                    for j in 0..<columns { target[j] += source[j] }
                }
            }
            return dTable
        default:
            checkFailed("structuralGradient: \(op.name) has its own rule")
        }
    }

    /// The derivative of an element-wise op with respect to its input `k`, as a formula over the op's inputs,
    /// its result and the incoming gradient, element by element (before broadcasting is undone). Eager backward
    /// evaluates it per op; the compiled plan fuses the formulas of a whole group into one sweep.
    func elementwiseDerivative(input k: Int) -> ElementFormula {
        let g = ElementFormula.gradient, y = ElementFormula.result, x = ElementFormula.input(0)
        func apply(_ op: ElementOp, _ a: ElementFormula, _ b: ElementFormula? = nil) -> ElementFormula { .apply(op, a, b) }
        func times(_ a: ElementFormula, _ b: ElementFormula) -> ElementFormula { apply(.binary(.multiply), a, b) }
        let oneMinus = { (a: ElementFormula) in apply(.affine(scale: -1, shift: 1), a) }
        switch self {
        case .unary(let function):
            switch function {
            case .negate: return apply(.unary(.negate), g)
            case .exp: return times(g, y)                                            // g·y
            case .log: return apply(.binary(.divide), g, x)                          // g / x
            case .tanh: return times(g, oneMinus(apply(.unary(.square), y)))         // g·(1 − y²)
            case .sigmoid: return times(times(g, y), oneMinus(y))                    // g·y·(1 − y)
            case .relu: return apply(.maskPositive, g, x)                            // x > 0 ? g : 0
            case .square: return times(apply(.affine(scale: 2, shift: 0), g), x)     // 2g·x
            case .sqrt: return apply(.binary(.divide), apply(.affine(scale: 0.5, shift: 0), g), y)  // g·0.5 / y
            case .abs: return apply(.maskSign, g, x)                                 // sign(x)·g
            }
        case .binary(let function):
            let a = ElementFormula.input(0), b = ElementFormula.input(1)
            switch (function, k) {
            case (.add, _), (.subtract, 0): return g
            case (.subtract, _): return apply(.unary(.negate), g)
            case (.multiply, 0): return times(g, b)
            case (.multiply, _): return times(g, a)
            case (.divide, 0): return apply(.binary(.divide), g, b)                   // g / b
            case (.divide, _): return apply(.binary(.divide), apply(.unary(.negate), times(g, y)), b)  // −(g·y) / b
            }
        case .affine(let scale, _): return apply(.affine(scale: scale, shift: 0), g)
        case .clamp(let lower, let upper): return apply(.maskInside(lower: lower, upper: upper), g, x)
        default: checkFailed("elementwiseDerivative: \(name) is not element-wise")
        }
    }

    /// The gradient of a matrix product `C = op(A) op(B)` with respect to input `k` (0 is `A`), as the
    /// product `op(left) · op(right)` with the transposes read in place.
    static func matmulGradient(input k: Int, transposeA: Bool, transposeB: Bool)
        -> (left: MatmulOperand, right: MatmulOperand, transposeLeft: Bool, transposeRight: Bool) {
        switch (transposeA, transposeB, k) {
        case (false, false, 0): (.gradient, .b, false, true)
        case (false, false, _): (.a, .gradient, true, false)
        case (true, false, 0): (.b, .gradient, false, true)
        case (true, false, _): (.a, .gradient, false, false)
        case (false, true, 0): (.gradient, .b, false, false)
        case (false, true, _): (.gradient, .a, true, false)
        case (true, true, 0): (.b, .gradient, true, true)
        case (true, true, _): (.gradient, .a, true, true)
        }
    }
}

extension Tensor {
    /// Returns this tensor repeated along its broadcast axes to `target`.
    public func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        return Tensor.zeros(target).combined(with: self, .add)
    }
}
