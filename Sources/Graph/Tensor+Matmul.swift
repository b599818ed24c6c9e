extension Tensor {
    /// Returns the matrix product `op(self) · op(other)` of rank-2 tensors, where `op` optionally transposes.
    ///
    /// Transposes are read in place by the kernel, never materialised.
    public func matmul(_ other: Tensor, transposingSelf: Bool = false, transposingOther: Bool = false) -> Tensor {
        check(rank == 2 && other.rank == 2,
                     "matmul: needs rank-2 operands, got \(shape) and \(other.shape)")
        let m = transposingSelf ? shape[1] : shape[0], k = transposingSelf ? shape[0] : shape[1]
        let k2 = transposingOther ? other.shape[1] : other.shape[0], n = transposingOther ? other.shape[0] : other.shape[1]
        check(k == k2, "matmul: inner dimensions differ: \(shape)\(transposingSelf ? "ᵀ" : "") x \(other.shape)\(transposingOther ? "ᵀ" : "")")
        let result = Tensor(uninitializedShape: [m, n])
        if k == 0 {
            result.base.update(repeating: 0, count: m * n)
            return result
        }
        gemm(transposeA: transposingSelf, transposeB: transposingOther, m: m, n: n, k: k,
             a: base, lda: shape[1], b: other.base, ldb: other.shape[1], beta: 0, c: result.base, ldc: n)
        return result
    }

    /// Adds `alpha · op(a) · op(b)` into this rank-2 tensor in place (it must have the product's shape).
    mutating func addMatmul(_ a: Tensor, _ b: Tensor, transposingA: Bool, transposingB: Bool) {
        let m = transposingA ? a.shape[1] : a.shape[0], k = transposingA ? a.shape[0] : a.shape[1]
        let n = transposingB ? b.shape[0] : b.shape[1]
        check(shape == [m, n], "matmul accumulate: target \(shape) differs from product [\(m), \(n)]")
        guard k > 0 else { return }
        withUnsafeMutableBufferPointer { target in
            gemm(transposeA: transposingA, transposeB: transposingB, m: m, n: n, k: k,
                 a: a.base, lda: a.shape[1], b: b.base, ldb: b.shape[1], beta: 1, c: target.baseAddress!, ldc: n)
        }
    }
}

/// Returns the matrix product of two tensors.
///
/// Rank 2 × rank 2 is the ordinary product; a rank-3 `[batch, m, k]` left operand times a rank-2
/// `[k, n]` right operand multiplies every batch entry by the same matrix, giving `[batch, m, n]`.
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    if a.rank == 3 && b.rank == 2 {
        return a.reshaped(to: [a.shape[0] * a.shape[1], a.shape[2]]).matmul(b)
            .reshaped(to: [a.shape[0], a.shape[1], b.shape[1]])
    }
    return a.matmul(b)
}
