import Graph
import Layers

/// The compiled plans of a model, keyed by input shapes and valid only for the structure they were traced
/// from: adding a layer or compiling again empties the cache, and a plan is dropped when the model's layers,
/// parameters or their trainability differ from the trace's.
struct PlanCache {
    /// The shapes of a plan's inputs, and whether it is a training step (else inference).
    struct Key: Hashable {
        var shapes: [[Int]]
        var isTraining: Bool
    }

    private var plans: [Key: Plan] = [:]
    private var signature: [ObjectIdentifier] = []
    private var trainability: [Bool] = []

    /// Forgets every plan.
    mutating func removeAll() { plans.removeAll() }

    /// The plan for `key`, if one was traced from `model`'s current structure.
    mutating func plan(for key: Key, model: Sequential) -> Plan? {
        guard let plan = plans[key] else { return nil }
        guard matches(model) else {
            plans.removeAll()
            return nil
        }
        return plan
    }

    /// Keeps `plan` for `key`.
    mutating func store(_ plan: Plan, for key: Key, model: Sequential) {
        if !matches(model) {
            plans.removeAll()
            let parameters = model.parameters
            signature = model.layers.map { ObjectIdentifier($0) } + parameters.map { ObjectIdentifier($0) }
            trainability = parameters.map(\.isTrainable)
        }
        plans[key] = plan
    }

    /// The plans kept, for inspection.
    var all: [Key: Plan] { plans }

    private func matches(_ model: Sequential) -> Bool {
        let parameters = model.parameters
        return signature == model.layers.map { ObjectIdentifier($0) } + parameters.map { ObjectIdentifier($0) }
            && trainability == parameters.map(\.isTrainable)
    }
}

extension Sequential {
    /// Whether steps with this loss can run compiled (sparse targets become one-hot constants read from the
    /// target's values, which a plan would freeze).
    func canCompile(loss: Loss?) -> Bool {
        guard jitCompile, layers.allSatisfy(\.supportsCompilation) else { return false }
        if case .sparseCategoricalCrossEntropy = loss { return false }
        return true
    }

    /// The compiled training step for inputs of `shape` and targets of `targetShape`, if one has been traced.
    public func compiledTrainingPlan(inputShape shape: [Int], targetShape: [Int]) -> Plan? {
        plans.all[PlanCache.Key(shapes: [shape, targetShape], isTraining: true)]
    }

    /// The model's output for one batch without training: a replayed forward plan when compiling, else untaped.
    func infer(_ batch: Tensor) -> Tensor {
        guard canCompile(loss: nil) else { return self(Node(batch)).value }
        let key = PlanCache.Key(shapes: [batch.shape], isTraining: false)
        if let plan = plans.plan(for: key, model: self) { return plan.replay([batch])[0] }
        let tape = Tape(isTraining: false)
        let input = tape.constant(batch)
        let output = self(input)
        plans.store(Plan(tape: tape, inputs: [input], outputs: [output]), for: key, model: self)
        return output.value
    }
}
