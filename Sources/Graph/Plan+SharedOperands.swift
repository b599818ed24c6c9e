// Products that share their right operand run as one GEMM (`sharedGEMM`), which packs each block of it once.
//
// In a recurrent layer's backward pass the input- and recurrent-weight gradients are `Xᵀ·D` and `Hᵀ·D` over all
// time steps, D the stacked gate gradients: each packed all of D (megabytes) for its own few rows (char-lstm's
// `Xᵀ·D` has 64). Products whose right operand is the same span with the same shape, that can run at the point
// where the first of them runs (nothing in between touches what a later one reads or writes) and that write
// disjoint places become one kernel there. Each product's bits are those it has alone (`sharedGEMM`), so no value
// changes; runs before the segments, the concurrent groups and the memory plan, which all see the merged kernel as
// one unit of work.

extension Plan {
    /// Merges the products that can share their right operand's packing into one `sharedMatmul` kernel each.
    func shareRightOperands() {
        var merged = Array(repeating: false, count: steps.count)
        for first in steps.indices where !merged[first] {
            guard let product = sharable(steps[first]) else { continue }
            var members = [first], touched = regions(steps[first]), between: [Region] = []
            for later in (first + 1)..<steps.count where !merged[later] {
                let spans = regions(steps[later])
                if let other = sharable(steps[later]), other.b == product.b, other.ldb == product.ldb, other.n == product.n,
                   other.k == product.k, other.transposeB == product.transposeB,
                   steps[later].isBackward == steps[first].isBackward,
                   Plan.independent(spans, touched), Plan.independent(spans, between) {
                    members.append(later)
                    touched += spans
                    merged[later] = true
                } else {
                    between += spans
                }
            }
            guard members.count > 1 else { continue }
            let kernels = members.map { steps[$0] }
            steps[first] = Kernel(work: .sharedMatmul(kernels.compactMap(sharable)), kind: .sharedMatmul,
                                  nodes: kernels.flatMap(\.nodes), isBackward: steps[first].isBackward,
                                  flops: kernels.reduce(0) { $0 + $1.flops }, reads: kernels.flatMap(\.reads),
                                  writes: kernels.flatMap(\.writes))
        }
        steps = steps.indices.filter { !merged[$0] }.map { steps[$0] }
    }

    /// The product of a kernel that may share its right operand: a plain GEMM (no packed parameter, no addend
    /// copied first) that `sharedGEMM` runs from a shared packing.
    private func sharable(_ kernel: Kernel) -> Product? {
        guard case .matmul(let product) = kernel.work, product.packed == nil, kernel.addend == nil,
              sharesRightOperandPacking(transposeA: product.transposeA, transposeB: product.transposeB, m: product.m,
                                        n: product.n, k: product.k) else { return nil }
        return product
    }
}
