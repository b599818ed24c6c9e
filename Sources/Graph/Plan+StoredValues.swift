// Store or recompute: which members of a fused sweep forward stores for its backward alone.
//
// A sweep's backward needs some members' values: σ(x) for σ's own derivative, the factors of a product. By
// default it re-evaluates them per tile from the values forward stored anyway, which costs no memory. But a
// transcendental (exp, log, tanh, sigmoid: 0.34 to 0.67 ns per element in the SIMD kernels) costs more than a
// store in forward and a load in backward, and computing it twice per step is what a compiled LSTM spent 9% of
// its time on. The cost rule: the fuser stores the transcendental members backward would re-evaluate when that
// keeps the floats backward reads about the same. It counts the floats of the values the group's backward reads
// (a strided view's source once) with and without storing them, and stores them all when that count grows by at
// most a quarter. An LSTM's or GRU's gates qualify: once the activated gates are stored, backward no longer reads
// the pre-activations, and the bytes swap one for one. The count is local to the group: a value it no longer
// reads may still be kept for another kernel's backward (an LSTM's c is also the next step's input), so the
// plan's real figure is `Plan.bytesKeptForBackward`, measured on the planned buffers. Forward computes the stored
// value with the same instruction on the same operands as the re-evaluation would, so the bits do not change.

extension PlanLowering {
    /// Marks the transcendental members each group's backward would re-evaluate as stored, where the cost rule
    /// above allows (only for plans with a backward pass, after the additions run as GEMMs are known).
    mutating func storeTranscendentalsForBackward() {
        for members in grouping.groups where !members.isEmpty && !isLone(members) {
            let memberSet = Set(members)
            var wanted: [Int] = []
            for member in members where records[member].needsGradient {
                let op = records[member].op, inputs = records[member].inputs
                for k in inputs.indices where records[inputs[k]].needsGradient {
                    let formula = op.elementwiseDerivative(input: k)
                    if formula.readsResult { wanted.append(member) }
                    wanted += formula.readInputs.sorted().map { inputs[$0] }
                }
            }
            func isRecomputed(_ index: Int, storing stored: Set<Int>) -> Bool {
                memberSet.contains(index) && !grouping.isMaterialized(index) && accumulations[index] == nil
                    && !stored.contains(index)
            }
            // The values backward reads from memory and the members it re-evaluates, when `stored` are stored.
            func reads(storing stored: Set<Int>) -> (floats: Int, recomputed: Set<Int>) {
                var external: Set<Int> = [], recomputed: Set<Int> = []
                var stack = wanted
                while let next = stack.popLast() {
                    if isRecomputed(next, storing: stored) {
                        if recomputed.insert(next).inserted { stack += records[next].inputs }
                    } else {
                        external.insert(grouping.isStridedView(next) ? records[next].inputs[0] : next)
                    }
                }
                return (external.reduce(0) { $0 + count($1) }, recomputed)
            }
            let before = reads(storing: [])
            let candidates = before.recomputed.filter {
                guard case .unary(let function) = records[$0].op else { return false }
                return [.exp, .log, .tanh, .sigmoid].contains(function)
            }
            guard !candidates.isEmpty, 4 * reads(storing: candidates).floats <= 5 * before.floats else { continue }
            grouping.store(candidates)
        }
    }
}
