import Kernels

// Products added into their addend. An addition `a + z` (or `z + a`) of one shape, where the matrix product
// `z` is read by that addition alone and `a` dies there (its last reader, and nothing else reads the memory it
// lies in), runs as `z`'s GEMM with beta = 1 straight into `a`'s place: the addition's result is that place,
// and no sweep reads `a` and `z` to write a third buffer (an LSTM's or MGU's `x·Wₜ + h·U` per step). When `a` is
// a column slice its sweep reads in place (an MGU's gate columns of `x·Wₜ`), the GEMM writes with the source's
// row stride (`ldc`), and the sum, left there, may be read by that sweep alone. A bias row
// `b` added to a product read by that addition alone (a GRU's `h·U + b'`, the input projection `x·W + b`) is the
// GEMM's row addend (`Plan.Product.row`): the kernel stores each tile's product onto the row, into the sum's own
// buffer, so the sum is written once, with no copy pass over its rows before the GEMM (one per time step for a
// GRU) and no read of them by the GEMM.
// The bits are eager's: with alpha = 1 and beta = 1 every GEMM path stores fl(acc + c), what eager's addition
// of the beta = 0 product computes, as long as K fits one pass of the kernel (`unroll_sgemm_max_single_pass_k`;
// a larger K is summed block by block into C, which would round the addend in between). Backward is unchanged:
// the addition passes its gradient on to both operands, as before.

extension PlanLowering {
    /// An addition run as its product's GEMM accumulating into its addend's place.
    struct Accumulation {
        var product: Int
        var addend: Int
        /// The packed right operand, chosen where the product was recorded (packing follows eager's order).
        var packed: Int?
        /// Whether the addend is a row repeated over the product's rows (the GEMM's row addend, into a buffer of its own).
        var broadcast: Bool
        /// The row stride of an addend that is a column slice read in place (a time step's gate columns of the
        /// input projection), or `nil` for a contiguous addend: the GEMM writes `C` with this leading dimension,
        /// and the sweep reading the sum reads it with this stride.
        var rowStride: Int? = nil
    }

    /// Finds the additions to run as accumulating GEMMs (only when fusing: unfused plans run one kernel per record).
    mutating func findAccumulations(needed: [Bool], pinned: Set<Int>) {
        guard fusing else { return }
        let maximumK = unroll_sgemm_max_single_pass_k()
        for index in records.indices where needed[index] {
            guard case .binary(.add) = records[index].op else { continue }
            let inputs = records[index].inputs
            guard inputs.count == 2, inputs[0] != inputs[1] else { continue }
            for (product, addend) in [(inputs[1], inputs[0]), (inputs[0], inputs[1])] {
                guard case .matmul(let transposeA, _) = records[product].op,
                      grouping.consumers(of: product) == [index], !pinned.contains(product),
                      shape(product) == shape(index) else { continue }
                let k = transposeA ? shape(records[product].inputs[0])[0] : shape(records[product].inputs[0])[1]
                let n = shape(index)[1]
                let broadcast = shape(addend) != shape(index) && count(addend) == n
                    && Tensor.trailingWidth(shape(addend), of: shape(index)) == n
                // A column slice read in place: the sum stays there, strided, so only its own sweep may read it.
                let strided = grouping.isStridedView(addend)
                guard k >= 1, k <= maximumK,
                      broadcast || (shape(addend) == shape(index) && canOverwrite(addend, at: index, pinned: pinned)),
                      !strided || (!pinned.contains(index) && !grouping.isMaterialized(index)
                                   && grouping.consumers(of: index).allSatisfy({ grouping.groupOf[$0] == grouping.groupOf[index] })) else {
                    continue
                }
                accumulations[index] = Accumulation(product: product, addend: addend, packed: nil, broadcast: broadcast,
                                                    rowStride: strided ? shape(records[addend].inputs[0]).last! : nil)
                accumulatedProducts[product] = index
                break
            }
        }
    }

    /// Whether writing into `addend`'s memory when the addition `sum` runs destroys nothing that a later kernel
    /// (forward or backward) or the caller reads: `addend` is read by `sum` alone, and it is either an accumulated
    /// addition itself, or lies in memory a matrix product, a transpose, a concatenation or an element-wise record
    /// wrote (possibly through reshapes and contiguous slices: a time step's rows of `x·W + b`) whose other
    /// readers read other floats, and whose backward does not read its value.
    func canOverwrite(_ addend: Int, at sum: Int, pinned: Set<Int>) -> Bool {
        guard grouping.consumers(of: addend) == [sum], !pinned.contains(addend) else { return false }
        if accumulations[addend] != nil { return true }
        // Climb through views to the record that owns the memory, noting where in it the addend lies: a span of
        // floats, and for a column slice read in place, its columns within rows of `width` floats.
        var owner = addend, start = 0
        var columns: Range<Int>?, width = 0
        if grouping.isStridedView(addend), case .slice(_, let range) = records[addend].op {
            (columns, width) = (range, shape(records[addend].inputs[0]).last!)
            owner = records[addend].inputs[0]
        }
        climbing: while true {
            switch records[owner].op {
            case .reshape, .stopGradient:
                owner = records[owner].inputs[0]
            case .slice(let axis, let range):
                let source = shape(records[owner].inputs[0])
                guard source[..<axis].reduce(1, *) == 1 else { return false }
                start += range.lowerBound * source[(axis + 1)...].reduce(1, *)
                owner = records[owner].inputs[0]
            default:
                break climbing
            }
        }
        let span = columns == nil ? start..<(start + count(addend)) : start..<(start + count(addend) / columns!.count * width)
        // Whether floats `other` (columns `otherColumns` of its rows, when set) overlap the addend's.
        func overlaps(_ other: Range<Int>, _ otherColumns: Range<Int>?) -> Bool {
            guard other.overlaps(span) else { return false }
            guard let columns, let otherColumns, (other.lowerBound - span.lowerBound) % width == 0 else { return true }
            return otherColumns.overlaps(columns)
        }
        switch records[owner].op {
        case .matmul:
            guard accumulatedProducts[owner] == nil else { return false }
        case .transpose, .concat:
            break
        case .unary, .binary, .affine, .clamp:
            let op = records[owner].op
            // Stored by its sweep (not a register of the addition's own sweep), and not read again by its backward.
            // A sum started from a bias row owns its buffer; one accumulated into its addend does not.
            guard accumulations[owner]?.broadcast ?? true, !pinned.contains(owner), grouping.isMaterialized(owner),
                  records[owner].inputs.indices.allSatisfy({ !op.elementwiseDerivative(input: $0).readsResult }) else {
                return false
            }
        default:
            return false
        }
        // Every reader of the owner's memory, through views: each must read floats outside the addend's span.
        var stack: [(node: Int, span: Range<Int>, columns: Range<Int>?)] = [(owner, 0..<count(owner), nil)]
        while let (node, nodeSpan, nodeColumns) = stack.popLast() {
            if node == addend { continue }
            if pinned.contains(node) && overlaps(nodeSpan, nodeColumns) { return false }
            for consumer in grouping.consumers(of: node) where nodeColumns == nil {
                switch records[consumer].op {
                case .reshape, .stopGradient:
                    stack.append((consumer, nodeSpan, nil))
                    continue
                case .slice(let axis, let range):
                    let source = shape(node)
                    if source[..<axis].reduce(1, *) == 1 {
                        let inner = source[(axis + 1)...].reduce(1, *)
                        let lower = nodeSpan.lowerBound + range.lowerBound * inner
                        stack.append((consumer, lower..<(lower + range.count * inner), nil))
                        continue
                    }
                    if columns != nil, source.count == 2, axis == 1, source[1] == width {
                        stack.append((consumer, nodeSpan, range))
                        continue
                    }
                default:
                    break
                }
                if overlaps(nodeSpan, nil) { return false }
            }
            // A column slice: every reader reads its columns (views of it are not followed).
            if nodeColumns != nil && !grouping.consumers(of: node).isEmpty && overlaps(nodeSpan, nodeColumns) { return false }
        }
        return true
    }

    /// Whether record `index` is a constant (not fed at replay) whose every element is zero.
    func isZeroConstant(_ index: Int) -> Bool {
        guard let location = value[index] else { return false }
        return isZeroConstant(location, count: count(index))
    }

    /// Whether `count` floats from `location` lie in a constant (not fed at replay) and are all zero.
    func isZeroConstant(_ location: Location, count: Int) -> Bool {
        guard case .constant(let k) = plan.storage[location.buffer].kind else { return false }
        let scalars = plan.constants[k].scalars
        guard location.offset + count <= scalars.count else { return false }
        return scalars[location.offset..<(location.offset + count)].allSatisfy { $0 == 0 }
    }

    /// Runs accumulated addition `sum`'s product into its addend's place; the addition's value is that place.
    mutating func emitAccumulation(_ sum: Int) {
        let accumulation = accumulations[sum]!
        let product = accumulation.product, inputs = records[product].inputs
        guard case .matmul(let transposeA, let transposeB) = records[product].op, let addend = value[accumulation.addend],
              accumulation.broadcast || plan.storage[addend.buffer].kind == .arena else {
            checkFailed("Plan: addition \(sum) cannot accumulate its product into its addend")
        }
        let a = shape(inputs[0]), b = shape(inputs[1])
        let m = transposeA ? a[1] : a[0], k = transposeA ? a[0] : a[1], n = transposeB ? b[0] : b[1]
        var target = addend
        if accumulation.broadcast {
            // The sum's own buffer, written by the GEMM as its product stored onto the row (the bits of copying the
            // row into every row, −0 kept, and accumulating onto it), with no pass of its own over the rows.
            target = newBuffer(.arena, count: m * n, isGradient: false, node: sum)
        } else {
            plan.storage[target.buffer].nodes.append(sum)
        }
        value[sum] = target
        // A zero left operand (a recurrent layer's zero initial state, a constant): the product adds +0 to every
        // element, which leaves the sum's place as it is (the addend, rounded as the GEMM's beta = 1 store rounds it).
        if !accumulation.broadcast && isZeroConstant(inputs[0]) { return }
        emit(.matmul(Plan.Product(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: value[inputs[0]]!, lda: a[1], b: value[inputs[1]]!, ldb: b[1], c: target,
                                  ldc: accumulation.rowStride ?? n, accumulating: !accumulation.broadcast,
                                  packed: accumulation.packed, row: accumulation.broadcast ? addend : nil)),
             kind: .accumulatingMatmul, nodes: [product, sum], flops: 2 * m * n * k,
             reads: [value[inputs[0]]!, value[inputs[1]]!, accumulation.broadcast ? addend : target], writes: [target],
             addend: accumulation.addend, addendIsRow: accumulation.broadcast)
    }
}
