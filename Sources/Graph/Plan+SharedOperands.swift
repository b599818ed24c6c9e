// Products that share their right operand run as one GEMM (`sharedGEMM`), which reads each block of it once.
//
// In a recurrent layer's backward pass the recurrent- and input-weight gradients are `Hᵀ·D` and `Xᵀ·D` over all
// time steps, D the stacked gate gradients, and the bias gradient is the sum of D's rows: each streamed all of D
// (megabytes; seed-lstm's is 26 MB) for its own few rows, a one-column input's `Xᵀ·D` and the row sum memory-bound
// and the sum on one core. Products whose right operand is the same span with the same shape, and row sums of that
// span (`1ᵀ·D`, a product with a row of ones), that can run at the point where the first of them runs (nothing in
// between touches what a later one reads or writes) and that write disjoint places become one kernel there, their
// rows stacked into one packed left operand. Joining pays when a large product reads D anyway (measured with
// `kbench shared`: the small rows ride in its 6-row panels' padding); without one, each keeps its own path. A large
// product keeps its bits (`sharedGEMM`); a joined small product or sum adds in another order than alone, so its
// last bits may change. Runs before the segments, the concurrent groups and the memory plan, which all see the
// merged kernel as one unit of work.

extension Plan {
    /// A kernel that may join a shared product: its right operand (span, layout and shape), whether it is large
    /// enough to lead one, and its part of the merged work.
    private struct SharedMember {
        var b: Location, ldb: Int, n: Int, k: Int, transposeB: Bool
        var leads: Bool
        var product: Product?
        var rowSum: RowSum?

        func sharesOperand(with other: SharedMember) -> Bool {
            b == other.b && ldb == other.ldb && n == other.n && k == other.k && transposeB == other.transposeB
        }
    }

    /// Merges the products and row sums that read the same right operand as a large product into one
    /// `sharedMatmul` kernel each.
    func shareRightOperands() {
        var merged = Array(repeating: false, count: steps.count)
        var movedAfter: [Int: [Int]] = [:]
        for first in steps.indices where !merged[first] {
            guard let member = sharedMember(steps[first]), member.leads else { continue }
            var members = [first], touched = regions(steps[first]), between: [Region] = []
            func joins(_ index: Int) -> Bool {
                guard !merged[index], let other = sharedMember(steps[index]), other.sharesOperand(with: member),
                      steps[index].isBackward == steps[first].isBackward else { return false }
                let spans = regions(steps[index])
                guard Plan.independent(spans, touched), Plan.independent(spans, between) else { return false }
                touched += spans
                return true
            }
            for later in (first + 1)..<steps.count {
                if joins(later) { members.append(later) } else { between += regions(steps[later]) }
            }
            // Earlier kernels (a bias sum lowered before the weight gradients) move down to the leader. The handing
            // over of a parameter's gradient in between (the bias's own, after its sum) moves behind the merged
            // kernel instead of blocking it: it writes nothing in the arena, and such kernels keep their order.
            between = []
            var handovers: [Int] = [], earliest = first
            for earlier in stride(from: first - 1, through: 0, by: -1) {
                if case .general = steps[earlier].work { break }
                if case .parameterGradient = steps[earlier].work, !merged[earlier] {
                    handovers.append(earlier)
                } else if joins(earlier) {
                    members.append(earlier)
                    earliest = earlier
                } else {
                    between += regions(steps[earlier])
                }
            }
            guard members.count > 1 else { continue }
            let moved = handovers.filter { $0 > earliest }.reversed()
            for index in moved { merged[index] = true }
            movedAfter[first] = Array(moved)
            let joined = members.map { sharedMember(steps[$0])! }
            for other in members.dropFirst() { merged[other] = true }
            // The large products first: the merged kernel runs at the leader's place with its right operand.
            let products = joined.filter(\.leads).compactMap(\.product) + joined.filter { !$0.leads }.compactMap(\.product)
            let rowSums = joined.compactMap(\.rowSum).map { sum in
                var sum = sum
                sum.partial = nil
                return sum
            }
            let kernels = members.map { steps[$0] }
            let flops = products.reduce(0) { $0 + 2 * $1.m * $1.n * $1.k } + rowSums.reduce(0) { $0 + 2 * $1.rows * $1.width }
            let sumWrites = rowSums.map(\.target.buffer)
            steps[first] = Kernel(work: .sharedMatmul(products, rowSums: rowSums), kind: .sharedMatmul,
                                  nodes: kernels.flatMap(\.nodes), isBackward: steps[first].isBackward, flops: flops,
                                  reads: kernels.flatMap(\.reads),
                                  writes: kernels.filter { $0.kind != .copy }.flatMap(\.writes) + sumWrites)
        }
        steps = steps.indices.flatMap { index in
            (merged[index] ? [] : [steps[index]]) + (movedAfter[index] ?? []).map { steps[$0] }
        }
    }

    /// The kernel as a member of a shared product: a plain GEMM (no packed parameter, no addend copied first), or a
    /// sum of rows into one (a bias gradient) as the product of a row of ones; `nil` for any other kernel.
    private func sharedMember(_ kernel: Kernel) -> SharedMember? {
        switch kernel.work {
        case .matmul(let product) where product.packed == nil && kernel.addend == nil:
            let leads = sharesRightOperandPacking(transposeA: product.transposeA, transposeB: product.transposeB,
                                                  m: product.m, n: product.n, k: product.k)
            return SharedMember(b: product.b, ldb: product.ldb, n: product.n, k: product.k,
                                transposeB: product.transposeB, leads: leads, product: product, rowSum: nil)
        case .rowSum(let sum) where !sum.broadcasting && sum.rows > 0 && sum.width > 0:
            return SharedMember(b: sum.source, ldb: sum.width, n: sum.width, k: sum.rows, transposeB: false, leads: false,
                                product: nil, rowSum: sum)
        default:
            return nil
        }
    }
}
