import Kernels

// One-column products stored onto by their reader. A recurrent layer with one input feature (a univariate series:
// seed-lstm, an MGU forecaster) projects it as `x·W + b` with K = 1: an outer product, one multiply-add per float it
// writes. Cut where read (`Plan+ProductsWhereRead.swift`), each time step's block is written just before that
// step's recurrent product adds `h·U` into it with beta = 1: a pass that writes the gate block and a GEMM that reads
// it back. When the block's very next kernel is that accumulation, from a packed recurrent kernel, the block joins
// it: the GEMM forms `xᵢ·wⱼ (+ bⱼ)` as it stores each tile (`unroll_sgemm_prepacked_b_outer`), so the gates are
// written once and never read by the GEMM. The addend is rounded as the one-column product rounds it and the tile
// added to it as a beta = 1 store adds, so the bits are those of the two kernels.

extension Plan {
    /// Joins each one-column forward product to the accumulating product from packed panels that runs right after it
    /// into its place (see above).
    func addOneColumnProductsIntoTheirReaders() {
        var index = 0
        while index + 1 < steps.count {
            guard let joined = joinedProduct(steps[index], into: steps[index + 1]) else {
                index += 1
                continue
            }
            let addend = steps[index]
            var reader = steps[index + 1]
            reader.work = .matmul(joined)
            reader.nodes = addend.nodes + reader.nodes
            reader.flops += addend.flops
            // The sum's place is written, no longer read (unless an operand lies in it); the addend's inputs are read.
            let operandBuffers = [joined.a.buffer, joined.b.buffer] + (joined.row.map { [$0.buffer] } ?? [])
            if !operandBuffers.contains(joined.c.buffer) { reader.reads.removeAll { $0 == joined.c.buffer } }
            for buffer in addend.reads where !reader.reads.contains(buffer) { reader.reads.append(buffer) }
            steps[index + 1] = reader
            steps.remove(at: index)
        }
    }

    /// The product `next` becomes when it starts from `kernel`'s one-column product instead of adding into it, or `nil`.
    private func joinedProduct(_ kernel: Kernel, into next: Kernel) -> Product? {
        guard !kernel.isBackward, !next.isBackward, kernel.kind != .stackedMatmul,
              case .matmul(let addend) = kernel.work, case .matmul(var product) = next.work,
              addend.k == 1, !addend.transposeA, !addend.accumulating, addend.packed == nil, addend.outer == nil,
              addend.ldc == addend.n, !addend.transposeB || addend.ldb == 1,
              product.accumulating, product.packed != nil, product.row == nil, product.outer == nil, product.zeroRows == 0,
              product.c == addend.c, product.ldc == product.n, product.m == addend.m, product.n == addend.n,
              storage[addend.c.buffer].kind == .arena else { return nil }
        product.accumulating = false
        product.row = addend.row
        product.outer = OuterAddend(x: addend.a, ldx: addend.lda, w: addend.b)
        return product
    }
}
