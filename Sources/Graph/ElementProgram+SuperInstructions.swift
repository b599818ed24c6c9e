import Kernels

// Super-instructions: the interpreter runs each instruction as its own loop over the tile (load, operate,
// store), so a chain such as `t = a·b; d = t + c` costs two passes and a store of `t` that only the next
// instruction reads. When a program is finished, a peephole pass merges an instruction into its only reader
// where the interpreter has an operation for the pair (the pairs and triples the derivative formulas and cells
// produce most: `g·(1 − y²)`, `g·y·(1 − y)`, sums of products). A merged operation rounds after every step in
// the order the separate instructions did, and contraction into FMA stays off, so the bits do not change. It
// relies on addition and multiplication commuting (`z·t` becomes `t·z`), which IEEE arithmetic guarantees up to
// which payload a NaN carries when both operands are NaN, a choice C compilers make freely already.

extension unroll_ew_instruction {
    /// The registers the instruction reads.
    var inputs: [Int32] { [a, b, c].filter { $0 >= 0 } }
}

enum SuperInstruction {
    /// The names, the operations each merges, and the codes of the interpreter's super-instructions.
    private static let table: [(code: Int32, name: String, operations: Int)] = [
        (Int32(UNROLL_EW_MULTIPLY_MULTIPLY), "multiplyMultiply", 2),
        (Int32(UNROLL_EW_MULTIPLY_ADD), "multiplyAdd", 2),
        (Int32(UNROLL_EW_ADD_ADD), "addAdd", 2),
        (Int32(UNROLL_EW_ADD_MULTIPLY), "addMultiply", 2),
        (Int32(UNROLL_EW_MULTIPLY_AFFINE), "multiplyAffine", 2),
        (Int32(UNROLL_EW_AFFINE_MULTIPLY), "affineMultiply", 2),
        (Int32(UNROLL_EW_AFFINE_ADD), "affineAdd", 2),
        (Int32(UNROLL_EW_SQUARE_AFFINE), "squareAffine", 2),
        (Int32(UNROLL_EW_SQUARE_AFFINE_MULTIPLY), "squareAffineMultiply", 3),
        (Int32(UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY), "affineMultiplyMultiply", 3),
    ]

    /// The name of a super-instruction's code, for plan inspection.
    static func name(ofCode code: Int) -> String {
        table.first { $0.code == Int32(code) }?.name ?? "unknown"
    }

    /// How many single instructions `code` stands for (1 for a single instruction).
    static func operationCount(ofCode code: Int) -> Int {
        table.first { $0.code == Int32(code) }?.operations ?? 1
    }

    /// Returns `code` with instructions merged into their only readers. Temporaries (registers from
    /// `temporaryBase` up) are written once; operands may be written several times, so a producer moves down to
    /// its reader only when nothing between them writes what it reads.
    static func merge(_ code: [unroll_ew_instruction], temporaryBase: Int32) -> [unroll_ew_instruction] {
        var code = code
        var removed = [Bool](repeating: false, count: code.count)
        var uses: [Int32: Int] = [:]
        for instruction in code { for register in instruction.inputs { uses[register, default: 0] += 1 } }
        var producer: [Int32: Int] = [:]
        for j in code.indices {
            var changed = true
            while changed {
                changed = false
                for (slot, register) in [code[j].a, code[j].b, code[j].c].enumerated() where register >= temporaryBase {
                    guard uses[register] == 1, let i = producer[register] else { continue }
                    let sources = code[i].inputs
                    if (i + 1..<j).contains(where: { !removed[$0] && sources.contains(code[$0].dst) }) { continue }
                    guard let merged = combined(code[i], into: code[j], slot: slot) else { continue }
                    code[j] = merged
                    removed[i] = true
                    changed = true
                    break
                }
            }
            if code[j].dst >= temporaryBase { producer[code[j].dst] = j }
        }
        return code.indices.filter { !removed[$0] }.map { code[$0] }
    }

    /// The super-instruction computing `consumer` with the value `producer` writes (read in input `slot` of
    /// `consumer`) computed inside it, or `nil` when the interpreter has none for the pair.
    static func combined(_ producer: unroll_ew_instruction, into consumer: unroll_ew_instruction, slot: Int)
        -> unroll_ew_instruction? {
        func make(_ op: Int32, _ a: Int32, _ b: Int32 = -1, _ c: Int32 = -1, p: Float = 0, q: Float = 0) -> unroll_ew_instruction {
            unroll_ew_instruction(op: op, dst: consumer.dst, a: a, b: b, c: c, p: p, q: q)
        }
        let (x, y) = (producer.a, producer.b)
        let (p, q) = (producer.p, producer.q)
        // The consumer's other input of a binary operation (multiplication and addition commute).
        let other = slot == 0 ? consumer.b : consumer.a
        switch (Int(consumer.op), Int(producer.op)) {
        case (Int(UNROLL_EW_MULTIPLY), Int(UNROLL_EW_MULTIPLY)): return make(Int32(UNROLL_EW_MULTIPLY_MULTIPLY), x, y, other)
        case (Int(UNROLL_EW_MULTIPLY), Int(UNROLL_EW_ADD)): return make(Int32(UNROLL_EW_ADD_MULTIPLY), x, y, other)
        case (Int(UNROLL_EW_MULTIPLY), Int(UNROLL_EW_AFFINE)):
            return make(Int32(UNROLL_EW_AFFINE_MULTIPLY), x, other, p: p, q: q)
        case (Int(UNROLL_EW_MULTIPLY), Int(UNROLL_EW_SQUARE_AFFINE)):
            return make(Int32(UNROLL_EW_SQUARE_AFFINE_MULTIPLY), x, other, p: p, q: q)
        case (Int(UNROLL_EW_ADD), Int(UNROLL_EW_MULTIPLY)): return make(Int32(UNROLL_EW_MULTIPLY_ADD), x, y, other)
        case (Int(UNROLL_EW_ADD), Int(UNROLL_EW_ADD)): return make(Int32(UNROLL_EW_ADD_ADD), x, y, other)
        case (Int(UNROLL_EW_ADD), Int(UNROLL_EW_AFFINE)): return make(Int32(UNROLL_EW_AFFINE_ADD), x, other, p: p, q: q)
        case (Int(UNROLL_EW_AFFINE), Int(UNROLL_EW_MULTIPLY)):
            return make(Int32(UNROLL_EW_MULTIPLY_AFFINE), x, y, p: consumer.p, q: consumer.q)
        case (Int(UNROLL_EW_AFFINE), Int(UNROLL_EW_SQUARE)):
            return make(Int32(UNROLL_EW_SQUARE_AFFINE), x, p: consumer.p, q: consumer.q)
        case (Int(UNROLL_EW_AFFINE_MULTIPLY), Int(UNROLL_EW_MULTIPLY)) where slot == 1:
            // (w·p + q)·(x·y)
            return make(Int32(UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY), consumer.a, x, y, p: consumer.p, q: consumer.q)
        case (Int(UNROLL_EW_MULTIPLY_MULTIPLY), Int(UNROLL_EW_AFFINE)) where slot == 2:
            // (a·b)·(x·p + q) = (x·p + q)·(a·b)
            return make(Int32(UNROLL_EW_AFFINE_MULTIPLY_MULTIPLY), x, consumer.a, consumer.b, p: p, q: q)
        default: return nil
        }
    }
}
