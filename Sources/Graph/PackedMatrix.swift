import Dispatch
import Kernels

/// A matrix packed once as the right operand of many matrix products.
///
/// Every matrix product rearranges its right operand into the 16-column panels the GEMM kernel reads. A
/// recurrent layer multiplies the same recurrent kernel `U` at every time step (`h·U` forward, `dG·Uᵀ`
/// backward), so packing it once per sequence removes that pass from every step and lets small batches
/// (13 to 128 rows) run at the kernel's full speed.
///
/// ```swift
/// let packed = recurrentKernel.packedForMatmul()          // op(B) = U, [hidden, gates·hidden]
/// let gates = h.matmul(packed)                            // h·U, any number of times
/// let back = gradient.matmul(recurrentKernel.packedForMatmul(transposed: true))   // dG·Uᵀ
/// ```
/// A product from a packed matrix is bitwise the same for any thread count, and the same as
/// ``Tensor/matmul(_:transposingSelf:transposingOther:)`` up to rounding (bitwise where that one takes
/// its packed path). The packed matrix is a snapshot: changing the tensor afterwards does not change it.
public struct PackedMatrix: Sendable {
    /// The rows of `op(B)`: the inner dimension of the products it takes part in.
    public let rows: Int
    /// The columns of `op(B)`: the columns of every product.
    public let columns: Int
    /// Whether it holds the transpose of the tensor it was packed from.
    public let isTransposed: Bool
    let storage: PackedStorage

    /// The number of bytes the panels occupy (columns padded to a multiple of 16).
    public var byteCount: Int { storage.count * MemoryLayout<Float>.stride }
}

/// The panels of a ``PackedMatrix``: written once when packed, read-only afterwards (so sharing the
/// pointer between the product's threads is safe).
final class PackedStorage: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    let count: Int

    init(count: Int) {
        self.count = count
        (pointer, capacity) = BufferPool.allocate(Swift.max(count, 1))
    }

    deinit { BufferPool.release(pointer, capacity: capacity) }
}

extension Tensor {
    /// Returns this rank-2 tensor packed as the right operand of matrix products: `op(B)` is `self`
    /// (`[k, n]`), or with `transposed` its transpose (`self` stored `[n, k]`).
    public func packedForMatmul(transposed: Bool = false) -> PackedMatrix {
        check(rank == 2, "packedForMatmul: needs a rank-2 tensor, got \(shape)")
        let k = transposed ? shape[1] : shape[0], n = transposed ? shape[0] : shape[1]
        let storage = PackedStorage(count: unroll_sgemm_packed_b_size(k, n))
        unroll_sgemm_pack_b(transposed ? 1 : 0, k, n, base, shape[1], storage.pointer)
        return PackedMatrix(rows: k, columns: n, isTransposed: transposed, storage: storage)
    }

    /// Returns the matrix product `op(self) · op(B)` with `op(B)` taken from `packed`.
    public func matmul(_ packed: PackedMatrix, transposingSelf: Bool = false) -> Tensor {
        check(rank == 2, "matmul: needs a rank-2 left operand, got \(shape)")
        let m = transposingSelf ? shape[1] : shape[0], k = transposingSelf ? shape[0] : shape[1]
        check(k == packed.rows,
              "matmul: inner dimensions differ: \(shape)\(transposingSelf ? "ᵀ" : "") x packed [\(packed.rows), \(packed.columns)]")
        let result = Tensor(uninitializedShape: [m, packed.columns])
        packedGEMM(transposeA: transposingSelf, m: m, a: base, lda: shape[1], packed: packed, beta: 0,
                   c: result.base, ldc: packed.columns)
        return result
    }

    /// Adds `op(a) · op(B)` into this rank-2 tensor in place, with `op(B)` taken from `packed`.
    mutating func addMatmul(_ a: Tensor, _ packed: PackedMatrix, transposingA: Bool) {
        let m = transposingA ? a.shape[1] : a.shape[0], k = transposingA ? a.shape[0] : a.shape[1]
        check(shape == [m, packed.columns] && k == packed.rows,
              "matmul accumulate: target \(shape) differs from product of \(a.shape) and packed [\(packed.rows), \(packed.columns)]")
        withUnsafeMutableBufferPointer { target in
            packedGEMM(transposeA: transposingA, m: m, a: a.base, lda: a.shape[1], packed: packed, beta: 1,
                       c: target.baseAddress!, ldc: packed.columns)
        }
    }
}

/// `C = op(A) · op(B) + beta · C` from a packed `op(B)`, on both cores when it pays (the same 1-MFLOP
/// threshold as ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``).
///
/// Columns are split in multiples of 16 (rows in multiples of 6 when there are few columns). Every
/// element's value depends only on the shapes, never on the split, so any thread count gives the same bits.
/// With `row` (`n` floats), `C = op(A) · op(B) + row` in every row instead (beta unused); with `outer` as well,
/// `C = op(A) · op(B) + x·wᵀ (+ row)` (`unroll_sgemm_prepacked_b_outer`; `x` one value per row, `ldx` apart).
func packedGEMM(transposeA: Bool, m: Int, a: UnsafePointer<Float>, lda: Int, packed: PackedMatrix,
                beta: Float, row: UnsafePointer<Float>? = nil,
                outer: (x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>)? = nil,
                c: UnsafeMutablePointer<Float>, ldc: Int, threads: Int? = nil) {
    let n = packed.columns, k = packed.rows
    let panels = UnsafePointer(packed.storage.pointer)
    let flops = 2 * m * n * k
    let threads = threads ?? (flops >= 1_000_000 ? GEMMThreads.count : 1)
    let splitN = n >= 32 || n >= m
    if threads == 1 || (splitN ? n : m) < 2 * (splitN ? 16 : 6) {
        prepackedGEMM(transposeA, m, n, k, a, lda, panels, 0, n, beta, row, outer, c, ldc)
        return
    }
    let granule = splitN ? 16 : 6
    let total = splitN ? n : m
    let chunk = ((total + threads - 1) / threads + granule - 1) / granule * granule
    let operands = UncheckedSendable(value: (a, panels, c, row, outer))
    forkJoin(iterations: threads) { part in
        let (a, panels, c, row, outer) = operands.value
        let start = part * chunk
        let end = Swift.min(total, start + chunk)
        guard start < end else { return }
        if splitN {
            prepackedGEMM(transposeA, m, n, k, a, lda, panels, start, end, beta, row, outer, c, ldc)
        } else {
            let aPart = transposeA ? a + start : a + start * lda
            let outerPart = outer.map { (x: $0.x + start * $0.ldx, ldx: $0.ldx, w: $0.w) }
            prepackedGEMM(transposeA, end - start, n, k, aPart, lda, panels, 0, n, beta, row, outerPart, c + start * ldc, ldc)
        }
    }
}

/// `unroll_sgemm_prepacked_b` (alpha 1), or with `row` `unroll_sgemm_prepacked_b_row`, or with `outer`
/// `unroll_sgemm_prepacked_b_outer`.
func prepackedGEMM(_ transposeA: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                   _ panels: UnsafePointer<Float>, _ n0: Int, _ n1: Int, _ beta: Float, _ row: UnsafePointer<Float>?,
                   _ outer: (x: UnsafePointer<Float>, ldx: Int, w: UnsafePointer<Float>)?,
                   _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    if let outer {
        unroll_sgemm_prepacked_b_outer(transposeA ? 1 : 0, m, n, k, 1, a, lda, panels, n0, n1, outer.x, outer.ldx, outer.w,
                                       row, c, ldc)
    } else if let row {
        unroll_sgemm_prepacked_b_row(transposeA ? 1 : 0, m, n, k, 1, a, lda, panels, n0, n1, row, c, ldc)
    } else {
        unroll_sgemm_prepacked_b(transposeA ? 1 : 0, m, n, k, 1, a, lda, panels, n0, n1, beta, c, ldc)
    }
}
