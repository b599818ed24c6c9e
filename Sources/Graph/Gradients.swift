// Every backward rule, in one exhaustive switch: given the op, its inputs' values, its output
// (`result`) and the gradient of the output (`grad`), add each input's gradient into the tape.
// Broadcasting is undone centrally in `Tape.accumulate`, so no rule deals with it.

extension Tape {
    func propagate(_ index: Int, _ grad: Tensor) {
        let record = records[index]
        let inputs = record.inputs
        let result = record.value
        func input(_ i: Int) -> Tensor { records[inputs[i]].value }

        switch record.op {
        case .constant, .variable, .parameter, .stopGradient:
            break

        case .unary(let function):
            let x = input(0)
            let dx: Tensor
            switch function {
            case .negate: dx = grad.map(.negate)
            case .exp: dx = Tensor.zip(grad, result) { g, y in g * y }
            case .log: dx = Tensor.zip(grad, x) { g, x in g / x }
            case .tanh: dx = Tensor.zip(grad, result) { g, y in g * (1 - y * y) }
            case .sigmoid: dx = Tensor.zip(grad, result) { g, y in g * y * (1 - y) }
            case .relu: dx = Tensor.zip(grad, x) { g, x in x > 0 ? g : 0 }
            case .square: dx = Tensor.zip(grad, x) { g, x in 2 * g * x }
            case .sqrt: dx = Tensor.zip(grad, result) { g, y in g * 0.5 / y }
            case .abs: dx = Tensor.zip(grad, x) { g, x in x > 0 ? g : (x < 0 ? -g : 0) }
            }
            accumulate(dx, into: inputs[0])

        case .binary(let function):
            let a = input(0), b = input(1)
            switch function {
            case .add:
                accumulate(grad, into: inputs[0])
                accumulate(grad, into: inputs[1])
            case .subtract:
                accumulate(grad, into: inputs[0])
                if wantsGradient(inputs[1]) { accumulate(grad.map(.negate), into: inputs[1]) }
            case .multiply:
                if wantsGradient(inputs[0]) { accumulate(grad * b, into: inputs[0]) }
                if wantsGradient(inputs[1]) { accumulate(grad * a, into: inputs[1]) }
            case .divide:
                if wantsGradient(inputs[0]) { accumulate(grad / b, into: inputs[0]) }
                if wantsGradient(inputs[1]) { accumulate(-(grad * result) / b, into: inputs[1]) }
            }

        case .affine(let scale, _):
            accumulate(grad.affine(scale: scale, shift: 0), into: inputs[0])

        case .clamp(let lower, let upper):
            accumulate(Tensor.zip(grad, input(0)) { g, x in x >= lower && x <= upper ? g : 0 }, into: inputs[0])

        case .matmul(let transposeA, let transposeB):
            let a = input(0), b = input(1)
            // C = op(A) op(B); each gradient is one product with the transposes read in place.
            switch (transposeA, transposeB) {
            case (false, false):
                accumulateMatmul(grad, b, transposingA: false, transposingB: true, into: inputs[0], bIndex: inputs[1])
                accumulateMatmul(a, grad, transposingA: true, transposingB: false, into: inputs[1])
            case (true, false):
                accumulateMatmul(b, grad, transposingA: false, transposingB: true, into: inputs[0])
                accumulateMatmul(a, grad, transposingA: false, transposingB: false, into: inputs[1])
            case (false, true):
                accumulateMatmul(grad, b, transposingA: false, transposingB: false, into: inputs[0], bIndex: inputs[1])
                accumulateMatmul(grad, a, transposingA: true, transposingB: false, into: inputs[1], bIndex: inputs[0])
            case (true, true):
                accumulateMatmul(b, grad, transposingA: true, transposingB: true, into: inputs[0])
                accumulateMatmul(grad, a, transposingA: true, transposingB: true, into: inputs[1], bIndex: inputs[0])
            }

        case .transpose(let permutation):
            var inverse = permutation
            for (axis, source) in permutation.enumerated() { inverse[source] = axis }
            accumulate(grad.transposed(permutation: inverse), into: inputs[0])

        case .reshape:
            accumulate(grad.reshaped(to: input(0).shape), into: inputs[0])

        case .slice(let axis, let range):
            accumulateSlice(grad, axis: axis, range: range, into: inputs[0])

        case .concat(let axis):
            var start = 0
            for i in inputs.indices {
                let width = input(i).shape[axis]
                if wantsGradient(inputs[i]) {
                    accumulate(grad.slice(along: axis, start..<(start + width)), into: inputs[i])
                }
                start += width
            }

        case .sum(let axes):
            var kept = input(0).shape
            for axis in axes { kept[axis] = 1 }
            accumulate(grad.reshaped(to: kept).broadcast(to: input(0).shape), into: inputs[0])

        case .logSoftmax(let axis):
            // dx = g - softmax(x) * sum(g)
            let total = grad.sum(alongAxes: [axis], keepingDimensions: true)
            accumulate(grad - result.exp() * total, into: inputs[0])

        case .softmax(let axis):
            // dx = y * (g - sum(g * y))
            let total = (grad * result).sum(alongAxes: [axis], keepingDimensions: true)
            accumulate(result * (grad - total), into: inputs[0])

        case .sparseMatmul(let matrix):
            accumulate(matrix.transposedProduct(grad), into: inputs[0])

        case .gather(let indices):
            let table = input(0)
            let columns = table.shape[1]
            var dTable = Tensor.zeros(table.shape)
            let g = grad.base
            dTable.withUnsafeMutableBufferPointer { buffer in
                for (row, index) in indices.enumerated() {
                    let target = buffer.baseAddress! + index * columns, source = g + row * columns
                    for j in 0..<columns { target[j] += source[j] }
                }
            }
            accumulate(dTable, into: inputs[0])

        case .checkpoint(let function):
            // Rebuild the body's graph on its own tape and backpropagate there; the main tape kept
            // only the inputs and outputs. Several outputs were flattened and joined: split `grad`.
            var start = 0
            let outputGradients = function.outputShapes.map { shape -> Tensor in
                let count = shape.reduce(1, *)
                defer { start += count }
                return function.outputShapes.count == 1 ? grad : grad.slice(along: 0, start..<(start + count)).reshaped(to: shape)
            }
            let inputGradients = function.recompute(inputs: inputs.map { records[$0].value },
                                                    needsGradient: inputs.map(wantsGradient),
                                                    outputGradients: outputGradients)
            for (i, gradient) in inputGradients.enumerated() {
                if let gradient { accumulate(gradient, into: inputs[i]) }
            }
        }
    }
}

extension Tensor {
    /// Returns `body(a[i], b[i])` for tensors of equal shape, in one pass.
    @inline(__always)
    static func zip(_ a: Tensor, _ b: Tensor, _ body: (Float, Float) -> Float) -> Tensor {
        check(a.shape == b.shape, "zip: shapes \(a.shape) and \(b.shape) differ")
        let result = Tensor(uninitializedShape: a.shape)
        let shared = UncheckedSendable(value: (a.base, b.base, result.base))
        forEachChunk(a.count) { range in
            let (x, y, out) = shared.value
            for i in range { out[i] = body(x[i], y[i]) }
        }
        return result
    }

    /// Returns this tensor repeated along its broadcast axes to `target`.
    public func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        return Tensor.zeros(target).combined(with: self, .add)
    }
}
