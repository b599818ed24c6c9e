// Parameters used as the right operand of many products on one tape (a recurrent kernel: h·U at every time
// step forward, dG·Uᵀ at every step backward) are packed for the GEMM once per tape generation instead of
// once per product.
//
// Why this is never stale: the cache is keyed by the parameter's record and packs the record's value, the
// snapshot the tape computes with (a parameter is recorded once per tape, and `Tensor` is copy-on-write, so
// an optimizer writing `parameter.value` never changes a recorded value). `Tape.removeAll()` empties the
// cache, and a new generation records the parameter's new value.

/// The packed forms of the parameters used as right operands on one tape.
struct PackedOperandCache {
    private enum Entry {
        /// Used once: the second use packs (a weight used once, such as a Dense kernel, is never packed).
        case usedOnce
        case packed(PackedMatrix)
    }

    /// Keyed by `2 · record index + (transposed ? 1 : 0)`.
    private var entries: [Int: Entry] = [:]

    /// Products smaller than this (m·n·k) are left to the unpacked GEMM's direct paths.
    static let minimumVolume = 8192

    /// Returns the packed `op(value)` for the record at `index` from its second use on; `nil` on the first.
    mutating func operand(_ index: Int, value: Tensor, transposed: Bool) -> PackedMatrix? {
        let key = 2 * index + (transposed ? 1 : 0)
        switch entries[key] {
        case .packed(let matrix)?:
            return matrix
        case .usedOnce?:
            let matrix = value.packedForMatmul(transposed: transposed)
            entries[key] = .packed(matrix)
            return matrix
        case nil:
            entries[key] = .usedOnce
            return nil
        }
    }

    /// The number of packed matrices held.
    var packedCount: Int {
        entries.values.reduce(0) { count, entry in
            if case .packed = entry { return count + 1 }
            return count
        }
    }

    /// Forgets every entry (the tape starts a new generation).
    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }
}

extension Tape {
    /// The packed form of record `index`'s value as the right operand `op(B)` of an `m`-row product, when
    /// the record is a parameter already used that way on this tape and the product is large enough.
    func packedOperand(_ index: Int, transposed: Bool, rows m: Int) -> PackedMatrix? {
        let record = records[index]
        guard case .parameter = record.op, record.value.rank == 2 else { return nil }
        guard m * record.value.count >= PackedOperandCache.minimumVolume else { return nil }
        return packedOperands.operand(index, value: record.value, transposed: transposed)
    }

    /// The number of parameters (and orientations) packed on this tape since it was last cleared.
    public var packedOperandCount: Int { packedOperands.packedCount }

    /// Returns `op(a) · op(b)`, from the packed form of `b` when `bIndex` names a parameter reused as a
    /// right operand on this tape.
    func product(_ a: Tensor, _ b: Tensor, transposingA: Bool, transposingB: Bool, bIndex: Int?) -> Tensor {
        let m = transposingA ? a.shape[1] : a.shape[0]
        if let bIndex, let packed = packedOperand(bIndex, transposed: transposingB, rows: m) {
            return a.matmul(packed, transposingSelf: transposingA)
        }
        return a.matmul(b, transposingSelf: transposingA, transposingOther: transposingB)
    }
}

extension Node {
    /// The value of `op(self) · op(other)`, using the tape's packed form of `other` when it is a parameter
    /// that this tape uses as a right operand again and again.
    func productValue(_ other: Node, transposingSelf: Bool, transposingOther: Bool) -> Tensor {
        if let tape = other.tape, other.generation == tape.generation, self.tape == nil || self.tape === tape {
            return tape.product(value, other.value, transposingA: transposingSelf, transposingB: transposingOther,
                                bIndex: other.index)
        }
        return value.matmul(other.value, transposingSelf: transposingSelf, transposingOther: transposingOther)
    }
}
