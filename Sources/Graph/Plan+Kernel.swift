// The kernels a plan runs, and what inspection reports about them.

extension Plan {
    /// An operand of an element-wise kernel: where it starts and how it is laid over the iteration space.
    struct ElementOperand {
        var location: Location
        var layout: OperandLayout
    }

    /// `C = op(A) op(B)` (or `C +=` when accumulating), row-major, with leading dimensions.
    struct Product {
        var transposeA: Bool, transposeB: Bool
        var m: Int, n: Int, k: Int
        var a: Location, lda: Int
        var b: Location, ldb: Int
        var c: Location
        var accumulating: Bool
        /// The packed right operand (an index into ``Plan/packedOperands``), when `B` is a reused parameter.
        var packed: Int? = nil
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

    /// An op run through the eager tensor kernels on views of the arena, its result copied (or added) into
    /// place: the rare ops (transposes, concatenations, sums, softmaxes, gathers) that no sweep fuses.
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
            case fill(Location, count: Int)
            case copyRows(RowCopy)
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
        /// The weight gradient `Σₜ aₜᵀ gₜ` of a weight used at many steps, as one product.
        case stackedMatmul
        /// Zeroing a gradient that slices are added into.
        case fill
        /// A strided copy (a slice, or a slice's gradient placed into its source's).
        case copy
        /// An op run through the eager tensor kernels (transpose, concat, sum, softmax, gather, a checkpoint).
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
