@testable import Graph
import Kernels
import XCTest

/// The peephole pass that merges element-wise instructions into super-instructions changes no bit: random
/// programs run with and without it give the same values in every operand, on the AVX2 path and the portable one.
final class SuperInstructionTests: XCTestCase {
    /// Operands: six full inputs, a repeated row, a scalar, then two outputs (registers 8 and 9).
    private static let inputCount = 8

    /// A random program: chains of products, sums and affine maps (what merges), derivative rules, other
    /// operations between them, and stores into the outputs and into input 0 while later instructions still read it.
    private func randomProgram(seed: UInt64) -> ElementProgramBuilder {
        var generator = SeededGenerator(seed: seed)
        func index(_ count: Int) -> Int { generator.nextIndex(below: count) }
        var builder = ElementProgramBuilder()
        for _ in 0..<(Self.inputCount + 2) { _ = builder.addOperand() }
        var values = Array(0..<Self.inputCount)
        // Mostly the latest values, so that chains form.
        func pick() -> Int { index(3) == 0 ? values[index(values.count)] : values[values.count - 1 - index(min(3, values.count))] }
        let affines: [(Float, Float)] = [(-1, 1), (-1, 0), (2, 0), (0.5, -0.25), (1, 0)]
        for _ in 0..<(10 + index(16)) {
            let op: ElementOp
            switch index(18) {
            case 0..<5: op = .binary(.multiply)
            case 5..<8: op = .binary(.add)
            case 8..<10: let (p, q) = affines[index(affines.count)]; op = .affine(scale: p, shift: q)
            case 10: op = .unary(.square)
            case 11: op = .binary(.subtract)
            case 12: op = [.unary(.tanh), .unary(.sigmoid), .unary(.negate)][index(3)]
            case 13: op = .binary(.divide)
            case 14: op = .maskPositive
            case 15:
                // A derivative rule as backward sweeps emit it (tanh's and sigmoid's among them).
                let functions: [UnaryFunction] = [.tanh, .sigmoid, .exp, .square, .sqrt]
                let formula = Op.unary(functions[index(functions.count)]).elementwiseDerivative(input: 0)
                values.append(builder.emit(formula, gradient: pick(), result: pick(), inputs: [pick()]))
                continue
            default:
                builder.store(pick(), into: [0, 8, 9][index(3)], accumulating: index(2) == 0)
                continue
            }
            let binary: Bool
            switch op {
            case .binary, .maskPositive: binary = true
            default: binary = false
            }
            values.append(builder.emit(op, pick(), binary ? pick() : nil))
        }
        builder.store(values[values.count - 1], into: 8, accumulating: index(2) == 0)
        builder.store(values[values.count - 2], into: 9, accumulating: false)
        return builder
    }

    /// Runs `program` over `[rows, columns]` on fresh copies of `data` (one array per operand) and returns them.
    private func run(_ program: ElementProgram, data: [[Float]], rows: Int, columns: Int) -> [[Float]] {
        let buffers = data.map { values -> UnsafeMutablePointer<Float> in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
            buffer.initialize(from: values, count: values.count)
            return buffer
        }
        defer { for buffer in buffers { buffer.deallocate() } }
        let operands = buffers.indices.map { k in
            switch k {
            case 6: unroll_ew_operand(base: buffers[k], row_stride: 0, column_stride: 1)
            case 7: unroll_ew_operand(base: buffers[k], row_stride: 0, column_stride: 0)
            default: unroll_ew_operand(base: buffers[k], row_stride: columns, column_stride: 1)
            }
        }
        var scratch = ElementScratch()
        scratch.reserve(program.scratchCount)
        defer { scratch.release() }
        operands.withUnsafeBufferPointer { pointer in
            runElementProgram(program, operands: pointer.baseAddress!, rows: rows, columns: columns, scratch: scratch.buffers)
        }
        return zip(buffers, data).map { Array(UnsafeBufferPointer(start: $0, count: $1.count)) }
    }

    func testSuperInstructionsGiveTheSameBits() {
        var seen: Set<Int32> = [], merged = 0, unmerged = 0
        for seed in UInt64(1)...200 {
            let builder = randomProgram(seed: seed)
            let fast = builder.finish(), reference = builder.finish(merging: false)
            merged += fast.code.count
            unmerged += reference.code.count
            XCTAssertEqual(fast.operationCount, reference.operationCount, "program \(seed)")
            for instruction in fast.code where Int(instruction.op) > Int(UNROLL_EW_MASK_INSIDE) { seen.insert(instruction.op) }
            // Rows of 37 (a vector loop's remainder) and of 300 (two tiles per row), several rows per tile or not.
            for (rows, columns) in [(5, 37), (2, 300)] {
                var generator = SeededGenerator(seed: seed &* 7919)
                let data = (0..<(Self.inputCount + 2)).map { k -> [Float] in
                    let count = k == 7 ? 1 : k == 6 ? columns : rows * columns
                    return (0..<count).map { _ in Float.random(in: -2...2, using: &generator) }
                }
                for portable in [false, true] {
                    unroll_ew_use_portable(portable ? 1 : 0)
                    defer { unroll_ew_use_portable(0) }
                    let expected = run(reference, data: data, rows: rows, columns: columns)
                    let actual = run(fast, data: data, rows: rows, columns: columns)
                    for k in expected.indices {
                        let same = zip(expected[k], actual[k]).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }
                        XCTAssertTrue(same, "program \(seed), operand \(k), [\(rows), \(columns)], portable \(portable)")
                    }
                }
            }
        }
        // Every super-instruction was exercised, and merging removed instructions.
        XCTAssertEqual(seen.count, Int(UNROLL_EW_OPERATION_COUNT) - Int(UNROLL_EW_MASK_INSIDE) - 1, "super-instructions seen: \(seen.sorted())")
        XCTAssertLessThan(merged, unmerged * 9 / 10)
    }

    /// The derivative of tanh, `g·(1 − y²)`, and of sigmoid, `g·y·(1 − y)`, each become one instruction.
    func testDerivativeFormulasBecomeOneInstruction() {
        for (function, name) in [(UnaryFunction.tanh, "squareAffineMultiply"), (.sigmoid, "affineMultiplyMultiply")] {
            var builder = ElementProgramBuilder()
            let gradient = builder.addOperand(), result = builder.addOperand(), output = builder.addOperand()
            let value = builder.emit(Op.unary(function).elementwiseDerivative(input: 0), gradient: gradient, result: result,
                                     inputs: [nil])
            builder.store(value, into: output, accumulating: false)
            XCTAssertEqual(builder.finish().code.map { ElementOp.name(ofCode: Int($0.op)) }, [name])
        }
    }
}
