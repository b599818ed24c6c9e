// Store or recompute: which members of a fused sweep forward stores for its backward alone.
//
// A sweep's backward needs some members' values: σ(x) for σ's own derivative, the factors of a product. By
// default it re-evaluates them per tile from the values forward stored anyway, which costs no memory. But a
// transcendental (exp, log, tanh, sigmoid: 0.34 to 0.67 ns per element in the SIMD kernels) costs more than a
// store in forward and a load in backward, and computing it twice per step is what a compiled LSTM spent 9% of
// its time on. The cost rule counts the floats kept for this group's backward alone: the values it reads from
// memory (a strided view's source once) that no other kernel's backward reads directly (those are kept anyway,
// such as an LSTM's c, which the next step's backward reads). The fuser starts from storing every
// transcendental member backward would re-evaluate, drops each one whose storing adds more floats than it frees
// (tanh(c'), recomputed from c, which is kept anyway), and stores the rest when the count grows by at most a
// quarter. An LSTM's or GRU's gates qualify: once the activated gates are stored, backward no longer reads the
// pre-activations, and the bytes swap one for one. The count is an estimate; the plan's real figure is
// `Plan.bytesKeptForBackward`, measured on the planned buffers. Forward computes the stored value with the same
// instruction on the same operands as the re-evaluation would, so the bits do not change.

extension PlanLowering {
    /// Marks the transcendental members each group's backward would re-evaluate as stored, where the cost rule
    /// above allows (only for plans with a backward pass, after the additions run as GEMMs are known).
    mutating func storeTranscendentalsForBackward(needed: [Bool]) {
        func key(_ index: Int) -> Int { grouping.isStridedView(index) ? records[index].inputs[0] : index }
        // The records whose backward reads each value straight from memory (formulas and products, not the
        // re-evaluation of a sweep's own members).
        var backwardReaders: [Int: [Int]] = [:]
        for index in records.indices where needed[index] && records[index].needsGradient {
            let inputs = records[index].inputs
            switch records[index].op {
            case .matmul:
                for k in 0..<2 where records[inputs[1 - k]].needsGradient { backwardReaders[key(inputs[k]), default: []].append(index) }
            case .unary, .binary, .affine, .clamp:
                for k in inputs.indices where records[inputs[k]].needsGradient {
                    let formula = records[index].op.elementwiseDerivative(input: k)
                    for read in formula.readInputs where grouping.unit(of: inputs[read]) != grouping.unit(of: index) {
                        backwardReaders[key(inputs[read]), default: []].append(index)
                    }
                }
            default:
                break
            }
        }
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
            // The floats kept for this backward alone and the members it re-evaluates, when `stored` are stored.
            func reads(storing stored: Set<Int>) -> (floats: Int, recomputed: Set<Int>) {
                var external: Set<Int> = [], recomputed: Set<Int> = []
                var stack = wanted
                while let next = stack.popLast() {
                    if isRecomputed(next, storing: stored) {
                        if recomputed.insert(next).inserted { stack += records[next].inputs }
                    } else {
                        external.insert(key(next))
                    }
                }
                let alone = external.filter { value in !(backwardReaders[value] ?? []).contains { !memberSet.contains($0) } }
                return (alone.reduce(0) { $0 + count($1) }, recomputed)
            }
            let before = reads(storing: [])
            var stored = before.recomputed.filter {
                guard case .unary(let function) = records[$0].op else { return false }
                return [.exp, .log, .tanh, .sigmoid].contains(function)
            }
            for candidate in stored.sorted() {
                var without = stored
                without.remove(candidate)
                if reads(storing: without).floats < reads(storing: stored).floats { stored = without }
            }
            guard !stored.isEmpty, 4 * reads(storing: stored).floats <= 5 * before.floats else { continue }
            grouping.store(stored)
        }
    }
}
