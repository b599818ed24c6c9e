// The kernels a plan runs, and what inspection reports about them.

extension Plan {
    /// An operand of an element-wise kernel: where it starts and how it is laid over the iteration space.
    struct ElementOperand {
        var location: Location
        var layout: OperandLayout
    }

    /// `C = op(A) op(B)` (or `C +=` when accumulating, or `C = row + op(A) op(B)` with a row addend), row-major,
    /// with leading dimensions.
    struct Product {
        var transposeA: Bool, transposeB: Bool
        var m: Int, n: Int, k: Int
        var a: Location, lda: Int
        var b: Location, ldb: Int
        /// `C`'s row stride: `n`, or the row length of the matrix whose columns `C` is (a column slice added into).
        var c: Location, ldc: Int
        var accumulating: Bool
        /// The packed right operand (an index into ``Plan/packedOperands``), when `B` is a reused parameter.
        var packed: Int? = nil
        /// A row of `n` floats `C` starts from in every row (a bias), instead of zeros or its own value: the GEMM
        /// stores each tile's product onto it, `C` written without being read (`unroll_sgemm_row`).
        var row: Location? = nil
        /// Leading rows of K in which `op(A)` is zero (a weight gradient's term of the zero initial state): a shared
        /// product's kernel starts its first K block after them (`unroll_sgemm_stacked_part.zero_k`).
        var zeroRows = 0
        /// An outer product `x·wᵀ` (plus `row`, when set) that `C` starts from instead of zeros: a one-column product
        /// computed as this product's tiles are stored (`unroll_sgemm_prepacked_b_outer`; see `Plan+OuterAddends.swift`).
        var outer: OuterAddend? = nil
    }

    /// The outer-product addend of a product: `x` holds one value per row of `C` (`ldx` apart), `w` one per column.
    struct OuterAddend {
        var x: Location, ldx: Int
        var w: Location
    }

    /// A parameter used as the right operand of many products, packed once per replay in one orientation.
    struct PackedOperand {
        var parameter: Int
        var transposed: Bool
        var matrix: PackedMatrix
    }

    /// `rows` rows of `width` floats copied (or added) between strided places: slices and their gradients.
    struct RowCopy {
        var source: Location, target: Location
        var rows: Int, width: Int
        var sourceStride: Int, targetStride: Int
        var accumulating: Bool
    }

    /// `rows` rows of `width` floats summed into one row (a bias gradient, a sum over leading axes), or with
    /// `broadcasting` one row added to every row (that sum's gradient): in the arena, allocating nothing, and in
    /// the order `Tensor.sum(toShape:)` and `Tensor.broadcast(to:)` use, so the bits are eager's.
    struct RowSum {
        var source: Location, target: Location
        var rows: Int, width: Int
        var accumulating: Bool
        var broadcasting: Bool
        /// Where a sum is finished before it is added to `target` (accumulating), as eager adds a finished sum.
        var partial: Location?
    }

    /// A transpose of a `shape` tensor by `permutation`, written (or added) into place: a recurrent layer's
    /// batch-major ↔ time-major moves and their gradients, without the eager kernel's result tensor.
    struct Permute {
        var source: Location, target: Location
        var shape: [Int]
        var permutation: [Int]
        var accumulating: Bool
    }

    /// An op run through the eager tensor kernels on views of the arena, its result copied (or added) into
    /// place: the rare ops (sums over inner axes, softmaxes, gathers, sparse products, checkpoints).
    struct General {
        var inputs: [(location: Location, shape: [Int])]
        var outputs: [(location: Location, count: Int, accumulating: Bool)]
        var body: ([Tensor]) -> [Tensor?]
    }

    /// One kernel of the schedule.
    struct Kernel {
        enum Work {
            case elementwise(ElementProgram, operands: [ElementOperand], rows: Int, columns: Int)
            case matmul(Product)
            /// Products and row sums (`1ᵀ·B`) reading the same right operand, run as one GEMM that reads it once.
            case sharedMatmul([Product], rowSums: [RowSum])
            case fill(Location, count: Int)
            case copyRows(RowCopy)
            case rowSum(RowSum)
            case permute(Permute)
            case general(General)
            case parameterGradient(Int, Location)
        }
        var work: Work
        var kind: PlanKernel.Kind
        var nodes: [Int]
        var isBackward: Bool
        var flops: Int
        var reads: [Int]
        var writes: [Int]
        /// The addend an accumulating product adds into (the node whose place holds the sum), and whether it is a
        /// row the GEMM starts every row of the sum's own buffer from (``Product/row``).
        var addend: Int? = nil
        var addendIsRow = false

        var scratchCount: Int {
            if case .elementwise(let program, _, _, _) = work { return program.scratchCount }
            return 0
        }
    }
}

/// One kernel of a compiled ``Plan``, as inspection reports it.
public struct PlanKernel: Sendable, Equatable {
    /// What a kernel does.
    public enum Kind: String, Sendable, Equatable {
        /// A fused sweep of element-wise records (one or more).
        case fused
        /// A matrix product (general matrix multiply).
        case matmul
        /// A matrix product added into its addend's place (`a + x·W` as one GEMM with beta = 1): its nodes are
        /// the product and the addition, ``PlanKernel/addend`` the addend.
        case accumulatingMatmul
        /// The weight gradient `Σₜ aₜᵀ gₜ` of a weight used at many steps, as one product.
        case stackedMatmul
        /// Products that read the same right operand at the same point (a recurrent layer's weight gradients `Hᵀ·D`
        /// and `Xᵀ·D`, and its bias gradient, the sum of D's rows, as the product `1ᵀ·D`), their rows stacked into one
        /// GEMM that reads each block of it once for all: its nodes are all of theirs, its FLOPs their sum (2·k·n for
        /// a row sum).
        case sharedMatmul
        /// Zeroing a gradient that slices are added into.
        case fill
        /// A strided copy (a slice, or a slice's gradient placed into its source's), or rows summed into one
        /// (a bias gradient, a sum over leading axes) or one row spread over many (that sum's gradient), or a
        /// transpose.
        case copy
        /// An op run through the eager tensor kernels (a sum over inner axes, softmax, gather, a checkpoint).
        case general
        /// Handing a parameter its gradient.
        case parameterGradient
    }
    /// What the kernel does.
    public let kind: Kind
    /// The recorded nodes (tape indices) whose forward or backward work this kernel does.
    public let nodes: [Int]
    /// Whether it belongs to the backward pass.
    public let isBackward: Bool
    /// Floating-point operations per replay (matrix products: 2mnk; element-wise: one per instruction and element).
    public let flops: Int
    /// The element-wise instructions of a fused kernel, by name (empty for other kinds).
    public let instructions: [String]
    /// The row-parallel segment (an index into ``Plan/segments``) the kernel runs in, or `nil` when it runs alone.
    public let segment: Int?
    /// The concurrent group (an index into ``Plan/concurrentKernelGroups``) the kernel runs in, beside the other
    /// kernels of its group on the other core, or `nil`.
    public let concurrentGroup: Int?
    /// The addend of an accumulating matrix product (`nil` for other kinds): the node whose buffer the product is
    /// added into, or a bias row the product starts every row of the sum's buffer from.
    public let addend: Int?
}

/// A run of consecutive kernels of a compiled ``Plan`` that runs split by batch rows: each part runs every
/// kernel of the run on its own rows, with one fork and join for the whole run.
public struct PlanSegment: Sendable, Equatable {
    /// The kernels (indices into ``Plan/kernels``).
    public let kernels: Range<Int>
    /// The rows every kernel of the segment iterates over (the batch).
    public let rows: Int
    /// The number of parts the rows are split into (fixed by the rows, never by the thread count).
    public let parts: Int
}

/// One buffer of a compiled ``Plan``, as inspection reports it.
public struct PlanBuffer: Sendable, Equatable {
    /// Floats in the buffer.
    public let count: Int
    /// Bytes in the buffer.
    public var bytes: Int { count * 4 }
    /// Its offset in the arena (in floats), or `nil` for memory the plan reads but does not own.
    public let arenaOffset: Int?
    /// Whether it holds a gradient (else a value).
    public let isGradient: Bool
    /// The recorded nodes whose value (or gradient) it holds.
    public let nodes: [Int]
    /// The first and last kernel (indices into ``Plan/kernels``) that use it.
    public let lifetime: ClosedRange<Int>
}

extension Plan {
    /// The kernels in the order a replay runs them: what each does, which recorded nodes it covers, its FLOPs.
    public var kernels: [PlanKernel] {
        var owner = [Int?](repeating: nil, count: steps.count)
        for (k, segment) in segments.enumerated() { for index in segment.kernels { owner[index] = k } }
        var group = [Int?](repeating: nil, count: steps.count)
        for (k, concurrent) in concurrentGroups.enumerated() { for index in concurrent.kernels { group[index] = k } }
        return steps.enumerated().map { index, step in
            var instructions: [String] = []
            if case .elementwise(let program, _, _, _) = step.work {
                instructions = program.code.map { ElementOp.name(ofCode: Int($0.op)) }
            }
            return PlanKernel(kind: step.kind, nodes: step.nodes, isBackward: step.isBackward, flops: step.flops,
                              instructions: instructions, segment: owner[index], concurrentGroup: group[index],
                              addend: step.addend)
        }
    }

    /// The runs of independent kernels outside segments that run at once, each kernel on one core: the kernels
    /// (indices into ``Plan/kernels``) of each group, by thread.
    public var concurrentKernelGroups: [[[Int]]] { concurrentGroups.map(\.lanes) }

    /// The row-parallel segments, in schedule order.
    public var rowSegments: [PlanSegment] {
        segments.map { PlanSegment(kernels: $0.kernels, rows: $0.rows, parts: $0.parts) }
    }

    /// Every buffer the plan uses (those no kernel touches left out): size, arena offset, what it holds, lifetime.
    public var buffers: [PlanBuffer] {
        storage.filter { $0.last >= 0 }.map { buffer in
            PlanBuffer(count: buffer.count, arenaOffset: buffer.kind == .arena ? buffer.offset : nil,
                       isGradient: buffer.isGradient, nodes: buffer.nodes,
                       lifetime: min(buffer.first, buffer.last)...buffer.last)
        }
    }

    /// The arena's size: the most bytes of values and gradients alive at once during a replay.
    public var arenaBytes: Int { arenaCount * MemoryLayout<Float>.stride }

    /// The bytes of forward values the backward pass reads (arena buffers written before the first backward
    /// kernel and read after it).
    public var bytesKeptForBackward: Int {
        guard let boundary = steps.firstIndex(where: \.isBackward) else { return 0 }
        return storage.filter { $0.kind == .arena && !$0.isGradient && $0.first < boundary && $0.last >= boundary }
            .reduce(0) { $0 + $1.count * MemoryLayout<Float>.stride }
    }

    /// The bytes of the parameters packed once per replay for the GEMM.
    public var packedBytes: Int { packedOperands.reduce(0) { $0 + $1.matrix.byteCount } }

    /// A table of the plan: one line per kernel (kind, nodes, FLOPs), then the memory it plans.
    public var summary: String {
        var lines = ["kernel  kind               pass      GFLOP  segment  nodes (tape indices) / instructions"]
        for (index, kernel) in kernels.enumerated() {
            let nodes = kernel.nodes.count > 8
                ? kernel.nodes.prefix(8).map(String.init).joined(separator: ",") + ",… (\(kernel.nodes.count))"
                : kernel.nodes.map(String.init).joined(separator: ",")
            var detail = kernel.instructions.isEmpty ? nodes : nodes + " / " + kernel.instructions.joined(separator: " ")
            if case .matmul(let product) = steps[index].work, product.outer != nil {
                detail += " / onto the one-column product \(kernel.nodes[0]), formed as its tiles are stored"
            } else if let addend = kernel.addend {
                detail += steps[index].addendIsRow ? " / + \(addend) in each row" : " / += into \(addend)'s buffer"
            }
            lines.append(String(index).padding(toLength: 8, withPad: " ", startingAt: 0)
                         + kernel.kind.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)
                         + (kernel.isBackward ? "backward  " : "forward   ")
                         + String(format: "%6.3f", Double(kernel.flops) / 1e9) + "  "
                         + (kernel.segment.map(String.init) ?? kernel.concurrentGroup.map { "c\($0)" } ?? "-")
                            .padding(toLength: 9, withPad: " ", startingAt: 0) + detail)
        }
        let fused = kernels.filter { $0.kind == .fused }
        lines.append("\(recordCount) recorded nodes → \(kernels.count) kernels (\(fused.count) fused sweeps covering "
                     + "\(fused.reduce(0) { $0 + $1.nodes.count }) element-wise records, forward and backward)")
        let split = segments.reduce(0) { $0 + $1.kernels.count }
        let parts = Set(segments.map(\.parts)).sorted().map(String.init).joined(separator: "/")
        lines.append(segments.isEmpty ? "no row-parallel segments (too few rows or too little work per run of kernels)"
                     : "\(segments.count) row-parallel segments covering \(split) kernels (each split by batch rows into "
                       + "\(parts) parts, one fork and join per segment)")
        if !concurrentGroups.isEmpty {
            lines.append("\(concurrentGroups.count) concurrent groups covering \(concurrentGroups.reduce(0) { $0 + $1.kernels.count }) "
                         + "kernels (segment column c<n>: independent kernels run at once, each on one core)")
        }
        lines.append("arena \(arenaBytes) bytes in \(buffers.filter { $0.arenaOffset != nil }.count) buffers; "
                     + "kept for backward \(bytesKeptForBackward) bytes; packed weights \(packedBytes) bytes")
        return lines.joined(separator: "\n")
    }
}
