// Parameter gradients written where they are handed over.
//
// A replay hands each parameter its gradient as a tensor (``Parameter/gradient``). Computed in the arena, it was
// copied out at the end of every replay: 2.6 MB for seed-lstm's recurrent kernel, on one core while the other
// waited. When a parameter's gradient fills one buffer of its own, that buffer is instead the parameter's gradient
// tensor (kept between replays in `parameterGradients`), and the handover only assigns it. A tensor that someone
// still holds at the next replay (a caller accumulating gradients over several replays) is left to them, and the
// replay writes into a fresh one.

extension Plan {
    /// Gives each parameter gradient that fills a buffer of its own the parameter's gradient tensor as its memory.
    func placeParameterGradients() {
        var handovers: [Int: Int] = [:]
        for step in steps {
            if case .parameterGradient(_, let location) = step.work { handovers[location.buffer, default: 0] += 1 }
        }
        let readBack = Set((outputLocations.map(\.0) + gradientLocations.compactMap(\.0)).map(\.buffer))
        for step in steps {
            guard case .parameterGradient(let k, let location) = step.work, location.offset == 0,
                  handovers[location.buffer] == 1, !readBack.contains(location.buffer),
                  storage[location.buffer].kind == .arena, storage[location.buffer].count == parameters[k].value.count
            else { continue }
            storage[location.buffer].kind = .parameterGradient(k)
        }
    }

    /// The memory of parameter `k`'s gradient tensor for this replay: last replay's, unless something else still
    /// holds that one.
    func parameterGradientStorage(_ k: Int) -> UnsafeMutablePointer<Float> {
        if parameterGradients[k] == nil || !isKnownUniquelyReferenced(&parameterGradients[k]!.storage) {
            parameterGradients[k] = Tensor(uninitializedShape: parameters[k].shape)
        }
        return parameterGradients[k]!.base
    }
}
