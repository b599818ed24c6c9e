import Dispatch
import Kernels

// Element-wise programs: the form in which both the eager backward rules and the compiled plan's fused
// kernels run element-wise math. A program is a list of register instructions over one tile of a
// `[rows, columns]` iteration space, run by the C interpreter in `Kernels/elementwise.c`.

/// One element-wise operation of a program: a forward op, or a piece of a derivative rule.
enum ElementOp: Equatable, Sendable {
    case copy
    case unary(UnaryFunction)
    case binary(BinaryFunction)
    case affine(scale: Float, shift: Float)
    case clamp(lower: Float, upper: Float)
    /// `b > 0 ? a : 0` (the gradient through `relu`).
    case maskPositive
    /// `b > 0 ? a : (b < 0 ? -a : 0)` (the gradient through `abs`).
    case maskSign
    /// `lower <= b <= upper ? a : 0` (the gradient through a clamp).
    case maskInside(lower: Float, upper: Float)

    /// The interpreter's instruction for `dst = self(a, b)`.
    func instruction(dst: Int, a: Int, b: Int) -> unroll_ew_instruction {
        var p: Float = 0, q: Float = 0
        let code: Int
        switch self {
        case .copy: code = Int(UNROLL_EW_COPY)
        case .unary(let function):
            code = Int(UNROLL_EW_NEGATE) + UnaryFunction.allCases.firstIndex(of: function)!
        case .binary(let function):
            code = Int(UNROLL_EW_ADD) + BinaryFunction.allCases.firstIndex(of: function)!
        case .affine(let scale, let shift): code = Int(UNROLL_EW_AFFINE); (p, q) = (scale, shift)
        case .clamp(let lower, let upper): code = Int(UNROLL_EW_CLAMP); (p, q) = (lower, upper)
        case .maskPositive: code = Int(UNROLL_EW_MASK_POSITIVE)
        case .maskSign: code = Int(UNROLL_EW_MASK_SIGN)
        case .maskInside(let lower, let upper): code = Int(UNROLL_EW_MASK_INSIDE); (p, q) = (lower, upper)
        }
        return unroll_ew_instruction(op: Int32(code), dst: Int32(dst), a: Int32(a), b: Int32(b), c: -1, p: p, q: q)
    }

    /// The name of an interpreter operation code, for plan inspection.
    static func name(ofCode code: Int) -> String {
        let unary = Int(UNROLL_EW_NEGATE), binary = Int(UNROLL_EW_ADD)
        switch code {
        case Int(UNROLL_EW_COPY): return "copy"
        case unary..<binary: return UnaryFunction.allCases[code - unary].rawValue
        case binary..<Int(UNROLL_EW_AFFINE): return BinaryFunction.allCases[code - binary].rawValue
        case Int(UNROLL_EW_AFFINE): return "affine"
        case Int(UNROLL_EW_CLAMP): return "clamp"
        case Int(UNROLL_EW_MASK_POSITIVE): return "maskPositive"
        case Int(UNROLL_EW_MASK_SIGN): return "maskSign"
        case Int(UNROLL_EW_MASK_INSIDE): return "maskInside"
        default: return SuperInstruction.name(ofCode: code)
        }
    }
}

/// An element-wise formula over a record's inputs, its result and the incoming gradient: how backward
/// rules for element-wise ops are written (`Gradients.swift`), once, for eager and compiled backward alike.
indirect enum ElementFormula: Sendable {
    /// The gradient flowing into the op's output.
    case gradient
    /// The op's output.
    case result
    /// The op's input number `k`.
    case input(Int)
    /// An operation of one or two sub-formulas.
    case apply(ElementOp, ElementFormula, ElementFormula?)

    /// Whether the formula reads the op's output.
    var readsResult: Bool {
        switch self {
        case .result: true
        case .gradient, .input: false
        case .apply(_, let a, let b): a.readsResult || (b?.readsResult ?? false)
        }
    }

    /// The inputs the formula reads.
    var readInputs: Set<Int> {
        switch self {
        case .input(let k): [k]
        case .gradient, .result: []
        case .apply(_, let a, let b): a.readInputs.union(b?.readInputs ?? [])
        }
    }
}

extension Op {
    /// The element-wise operation this op performs, or `nil` when it is not element-wise.
    var elementOp: ElementOp? {
        switch self {
        case .unary(let function): .unary(function)
        case .binary(let function): .binary(function)
        case .affine(let scale, let shift): .affine(scale: scale, shift: shift)
        case .clamp(let lower, let upper): .clamp(lower: lower, upper: upper)
        default: nil
        }
    }
}

/// A compiled element-wise program: instructions, and how many operand and scratch registers they use.
struct ElementProgram: Sendable {
    var code: [unroll_ew_instruction]
    var operandCount: Int
    var registerCount: Int

    /// The operations per element: instructions, a super-instruction counting as the ones it merges.
    var operationCount: Int { code.reduce(0) { $0 + SuperInstruction.operationCount(ofCode: Int($1.op)) } }

    /// The floats of scratch one thread needs to run the program.
    var scratchCount: Int { unroll_ew_scratch_count(registerCount) }
}

/// Builds an ``ElementProgram``: operands first, then instructions on fresh registers; `finish()` maps the
/// temporaries onto as few scratch tiles as their lifetimes allow and writes results straight into the
/// operand they are stored to.
struct ElementProgramBuilder {
    private var code: [unroll_ew_instruction] = []
    private(set) var operandCount = 0
    private var temporaryCount = 0
    private var writtenOperands: Set<Int> = []
    private var readOperands: Set<Int> = []
    private static let temporaryBase = 1 << 24

    /// Adds an operand and returns its register.
    mutating func addOperand() -> Int {
        operandCount += 1
        return operandCount - 1
    }

    /// Emits `op(a, b)` into a fresh temporary and returns it.
    mutating func emit(_ op: ElementOp, _ a: Int, _ b: Int? = nil) -> Int {
        let dst = Self.temporaryBase + temporaryCount
        temporaryCount += 1
        append(op.instruction(dst: dst, a: a, b: b ?? -1))
        return dst
    }

    /// Emits `formula` with its leaves bound to registers and returns the register holding the value.
    mutating func emit(_ formula: ElementFormula, gradient: Int, result: Int?, inputs: [Int?]) -> Int {
        switch formula {
        case .gradient: return gradient
        case .result: return result!
        case .input(let k): return inputs[k]!
        case .apply(let op, let a, let b):
            let ra = emit(a, gradient: gradient, result: result, inputs: inputs)
            let rb = b.map { emit($0, gradient: gradient, result: result, inputs: inputs) }
            return emit(op, ra, rb)
        }
    }

    /// Writes (or adds) `value` into operand `operand`.
    mutating func store(_ value: Int, into operand: Int, accumulating: Bool) {
        writtenOperands.insert(operand)
        if accumulating {
            append(ElementOp.binary(.add).instruction(dst: operand, a: operand, b: value))
        } else {
            append(ElementOp.copy.instruction(dst: operand, a: value, b: -1))
        }
    }

    /// Adds `value` into register `sum`, or returns `value` when there is no sum yet.
    mutating func add(_ value: Int, to sum: Int?) -> Int {
        guard let sum else { return value }
        return emit(.binary(.add), sum, value)
    }

    private mutating func append(_ instruction: unroll_ew_instruction) {
        for register in [instruction.a, instruction.b] where register >= 0 && Int(register) < operandCount {
            readOperands.insert(Int(register))
        }
        code.append(instruction)
    }

    /// Returns the program with temporaries renamed onto reused scratch registers, and with pairs and triples of
    /// instructions merged into super-instructions unless `merging` is false (the tests' reference).
    func finish(merging: Bool = true) -> ElementProgram {
        var code = self.code
        // A copy of a temporary into an operand that nothing reads: compute the temporary in place there.
        var rename: [Int32: Int32] = [:]
        var removed = Set<Int>()
        for (i, instruction) in code.enumerated() where instruction.op == Int32(UNROLL_EW_COPY)
            && Int(instruction.dst) < operandCount && Int(instruction.a) >= Self.temporaryBase
            && rename[instruction.a] == nil && !readOperands.contains(Int(instruction.dst)) {
            rename[instruction.a] = instruction.dst
            removed.insert(i)
        }
        code = code.enumerated().filter { !removed.contains($0.offset) }.map { _, instruction in
            var instruction = instruction
            instruction.dst = rename[instruction.dst] ?? instruction.dst
            instruction.a = rename[instruction.a] ?? instruction.a
            if instruction.b >= 0 { instruction.b = rename[instruction.b] ?? instruction.b }
            return instruction
        }
        if merging { code = SuperInstruction.merge(code, temporaryBase: Int32(Self.temporaryBase)) }
        // Linear scan: a temporary's tile is free again after its last reader.
        var lastUse: [Int32: Int] = [:]
        for (i, instruction) in code.enumerated() {
            for register in instruction.inputs { lastUse[register] = i }
            if lastUse[instruction.dst] == nil { lastUse[instruction.dst] = i }
        }
        var physical: [Int32: Int32] = [:]
        var free: [Int32] = []
        var next = Int32(operandCount)
        func map(_ register: Int32) -> Int32 {
            register < Int32(Self.temporaryBase) ? register : physical[register]!
        }
        for i in code.indices {
            var instruction = code[i]
            instruction.a = map(instruction.a)
            if instruction.b >= 0 { instruction.b = map(instruction.b) }
            if instruction.c >= 0 { instruction.c = map(instruction.c) }
            // Release the inputs that die here before choosing the output's tile: in-place is safe element-wise.
            for register in code[i].inputs where register >= Int32(Self.temporaryBase) && lastUse[register] == i {
                if let tile = physical[register], !free.contains(tile) { free.append(tile) }
            }
            if instruction.dst >= Int32(Self.temporaryBase) {
                let tile = free.popLast() ?? { next += 1; return next - 1 }()
                physical[instruction.dst] = tile
                instruction.dst = tile
            }
            code[i] = instruction
        }
        return ElementProgram(code: code, operandCount: operandCount, registerCount: Int(next))
    }
}

/// How an operand is laid over a `[rows, columns]` iteration space.
struct OperandLayout: Equatable {
    var rowStride: Int
    var columnStride: Int
}

/// Chooses a `[rows, columns]` iteration space for `shape` in which each of `operandShapes` (which broadcast to
/// `shape`) is full, a scalar, a repeated row, or a value repeated along each row; `nil` when no single choice
/// fits them all (the caller then materialises the broadcasts). `requiredColumns` forces the row length (strided
/// views of slices need rows of exactly their width).
func elementLayout(_ shape: [Int], operandShapes: [[Int]], requiredColumns: Int? = nil)
    -> (rows: Int, columns: Int, layouts: [OperandLayout])? {
    let total = shape.reduce(1, *)
    let last = shape.last ?? 1
    var columns = requiredColumns
    var kinds: [Int] = []  // 0 full, 1 scalar, 2 repeated row, 3 repeated along row
    for operand in operandShapes {
        let count = operand.reduce(1, *)
        if count == total {
            kinds.append(0)
        } else if count == 1 {
            kinds.append(1)
        } else if let width = Tensor.trailingWidth(operand, of: shape) {
            guard columns == nil || columns == width else { return nil }
            columns = width
            kinds.append(2)
        } else if count * last == total, operand.last == 1 || operand.count < shape.count,
                  Array(([Int](repeating: 1, count: shape.count - operand.count) + operand).dropLast()) == Array(shape.dropLast()) {
            guard columns == nil || columns == last else { return nil }
            columns = last
            kinds.append(3)
        } else {
            return nil
        }
    }
    let width = columns ?? total
    let rows = width == 0 ? 0 : total / width
    let layouts = kinds.map { kind -> OperandLayout in
        switch kind {
        case 0: OperandLayout(rowStride: width, columnStride: 1)
        case 1: OperandLayout(rowStride: 0, columnStride: 0)
        case 2: OperandLayout(rowStride: 0, columnStride: 1)
        default: OperandLayout(rowStride: 1, columnStride: 0)
        }
    }
    return (rows, width, layouts)
}

/// Per-thread scratch for element-wise programs, owned by whoever runs them.
struct ElementScratch {
    private(set) var buffers: [UnsafeMutablePointer<Float>] = []
    private(set) var capacity = 0

    /// Makes room for `count` floats per thread.
    mutating func reserve(_ count: Int) {
        guard count > capacity else { return }
        release()
        capacity = count
        // At least two: a plan's row-parallel segments run two parts, on one thread or two.
        buffers = (0..<max(2, GEMMThreads.count)).map { _ in
            UnsafeMutableRawPointer.allocate(byteCount: count * 4, alignment: 64).bindMemory(to: Float.self, capacity: count)
        }
    }

    /// Frees the buffers.
    mutating func release() {
        for buffer in buffers { UnsafeMutableRawPointer(buffer).deallocate() }
        buffers = []
        capacity = 0
    }
}

/// Runs `program` over `[rows, columns]` with `operands`, on both cores when the work is large enough to pay
/// for the hand-off. The split is fixed by the shape and the thread count, and per element the result does not
/// depend on it, so results are bitwise the same on every run and for every thread count.
func runElementProgram(_ program: ElementProgram, operands: UnsafePointer<unroll_ew_operand>, rows: Int, columns: Int,
                       scratch: [UnsafeMutablePointer<Float>]) {
    let work = rows * columns * max(1, program.operationCount)
    let threads = min(scratch.count, GEMMThreads.count, work >= 1 << 17 ? 2 : 1)
    let count = program.code.count
    program.code.withUnsafeBufferPointer { code in
        if threads <= 1 {
            unroll_ew_run(code.baseAddress, count, operands, program.operandCount, program.registerCount,
                          0, rows, 0, columns, scratch[0])
            return
        }
        let shared = UncheckedSendable(value: (code.baseAddress, operands, scratch))
        let splitRows = rows >= threads
        let total = splitRows ? rows : columns
        let granule = splitRows ? 1 : 8
        let chunk = ((total + threads - 1) / threads + granule - 1) / granule * granule
        forkJoin(iterations: threads) { part in
            let (code, operands, scratch) = shared.value
            let start = part * chunk, end = min(total, start + chunk)
            guard start < end else { return }
            if splitRows {
                unroll_ew_run(code, count, operands, program.operandCount, program.registerCount,
                              start, end, 0, columns, scratch[part])
            } else {
                unroll_ew_run(code, count, operands, program.operandCount, program.registerCount,
                              0, rows, start, end, scratch[part])
            }
        }
    }
}

extension Tensor {
    /// Returns `formula` evaluated element-wise over `gradient`'s shape, with the op's `inputs` broadcast to it
    /// (the eager backward of an element-wise op).
    static func evaluate(_ formula: ElementFormula, gradient: Tensor, result: Tensor, inputs: [Tensor]) -> Tensor {
        if case .gradient = formula { return gradient }
        let shape = gradient.shape
        let readInputs = formula.readInputs
        var tensors = [gradient]
        if formula.readsResult { tensors.append(result) }
        var inputRegisters = [Int?](repeating: nil, count: inputs.count)
        for k in inputs.indices where readInputs.contains(k) {
            inputRegisters[k] = tensors.count
            tensors.append(inputs[k])
        }
        guard let layout = elementLayout(shape, operandShapes: tensors.map(\.shape)) else {
            let broadcast = inputs.map { $0.shape == shape ? $0 : $0.broadcast(to: shape) }
            return evaluate(formula, gradient: gradient, result: result, inputs: broadcast)
        }
        var builder = ElementProgramBuilder()
        for _ in tensors { _ = builder.addOperand() }
        let output = builder.addOperand()
        let value = builder.emit(formula, gradient: 0, result: formula.readsResult ? 1 : nil, inputs: inputRegisters)
        builder.store(value, into: output, accumulating: false)
        let program = builder.finish()
        let out = Tensor(uninitializedShape: shape)
        var operands = Swift.zip(tensors, layout.layouts).map { tensor, layout in
            unroll_ew_operand(base: tensor.base, row_stride: layout.rowStride, column_stride: layout.columnStride)
        }
        operands.append(unroll_ew_operand(base: out.base, row_stride: layout.columns, column_stride: 1))
        var scratch = ElementScratch()
        scratch.reserve(program.scratchCount)
        defer { scratch.release() }
        operands.withUnsafeBufferPointer { pointer in
            runElementProgram(program, operands: pointer.baseAddress!, rows: layout.rows, columns: layout.columns,
                              scratch: scratch.buffers)
        }
        return withExtendedLifetime(tensors) { out }
    }
}
