/// A function recorded as one node by ``Tape/checkpoint(_:body:)``: the tape keeps its inputs and
/// outputs only, and the backward pass runs it again to rebuild what lies in between.
///
/// Equality is identity: two checkpoints are the same op only if they are the same recording.
public final class CheckpointedFunction: @unchecked Sendable, Equatable {
    // `@unchecked`: the body is a closure over layers and parameters, which are not Sendable. A tape and
    // everything recorded on it are used from one thread at a time, and so is this object.
    let body: ([Node]) -> [Node]
    /// The shapes of the body's outputs, in order.
    public let outputShapes: [[Int]]
    /// The number of scalars the last recomputation kept on its tape (the peak it added during backward).
    public internal(set) var recomputedScalarCount = 0
    /// Where compiled forms of the body are kept, and which form of the body this is.
    let compiled: (plans: CheckpointPlans, variant: String)?

    init(body: @escaping ([Node]) -> [Node], outputShapes: [[Int]], compiled: (plans: CheckpointPlans, variant: String)?) {
        self.body = body
        self.outputShapes = outputShapes
        self.compiled = compiled
    }

    /// Runs the body on `inputs` without keeping anything but its outputs (a compiled forward plan when
    /// there is one), returning them flattened and joined when there are several.
    func forward(_ inputs: [Tensor]) -> Tensor {
        let outputs: [Tensor]
        if let compiled {
            outputs = compiled.plans.forwardPlan(variant: compiled.variant, inputs: inputs, body: body).replay(inputs)
        } else {
            outputs = body(inputs.map { Node($0) }).map(\.value)
        }
        return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs.map { $0.reshaped(to: [$0.count]) }, along: 0)
    }

    /// Whether both are the same recording.
    public static func == (lhs: CheckpointedFunction, rhs: CheckpointedFunction) -> Bool { lhs === rhs }

    /// Runs the body again on a fresh tape with `inputs` as variables (constants where `needsGradient` is
    /// false), backpropagates `outputGradients` from its outputs (parameters put on the tape inside (`onSameTape`) receive their
    /// gradients there), and returns the inputs' gradients (`nil` where none is wanted).
    func recompute(inputs: [Tensor], needsGradient: [Bool], outputGradients: [Tensor]) -> [Tensor?] {
        if let compiled {
            let plan = compiled.plans.backwardPlan(variant: compiled.variant, inputs: inputs, needsGradient: needsGradient,
                                                   outputShapes: outputShapes, body: body)
            recomputedScalarCount = plan.arenaBytes / MemoryLayout<Float>.stride
            var gradients = plan.replay(inputs + outputGradients)[...]
            return needsGradient.map { wanted in wanted ? gradients.popFirst() : nil }
        }
        // The forward run was untaped, where layers behave as in inference; the rerun must match it.
        let tape = Tape(isTraining: false)
        let nodes = zip(inputs, needsGradient).map { value, wanted in wanted ? tape.variable(value) : tape.constant(value) }
        let outputs = body(nodes)
        tape.backward(from: outputs, seeds: outputGradients)
        recomputedScalarCount = tape.savedScalarCount
        return zip(nodes, needsGradient).map { node, wanted in wanted ? tape.gradient(of: node) : nil }
    }
}

extension Tape {
    /// Runs `body` on `inputs` keeping only its outputs, and records it as one node whose backward pass
    /// runs `body` again (gradient checkpointing: Chen et al., 2016).
    ///
    /// The forward run is untaped, so every value `body` computes in between is freed as soon as it is
    /// used. In the backward pass `body` runs once more on a fresh tape with the inputs as variables,
    /// that tape backpropagates the outputs' gradients, parameters put on the tape inside `body` receive their
    /// gradients as usual, and the inputs' gradients flow on into this tape. The gradients are those
    /// of recording `body` directly; the memory is that of one run of `body` at a time, for one more
    /// forward pass of compute.
    ///
    /// `body` must compute the same values when run again: randomness such as dropout belongs outside
    /// (it runs untaped in the forward pass, so ``isTraining`` does not reach it). Several outputs come
    /// back as slices of one recorded value.
    ///
    /// With `plans`, the body's two runs replay compiled plans (``Plan``) kept there under `variant` and the
    /// input shapes, traced from `body` the first time: the caller promises that `body` computes the same
    /// function whenever it passes the same `plans`, `variant` and shapes (parameters are read live).
    ///
    /// - Parameters:
    ///   - inputs: nodes on this tape (or untaped, recorded as constants).
    ///   - plans: where compiled forms of `body` are kept across calls, or `nil` to run it eagerly.
    ///   - variant: names this form of `body` among those kept in `plans`.
    ///   - body: a function of nodes that records nothing but what it computes from them and from
    ///     parameters it puts on the same tape.
    /// - Returns: the outputs of `body`, in order, on this tape.
    public func checkpoint(_ inputs: [Node], compilingWith plans: CheckpointPlans? = nil, variant: String = "",
                           body: @escaping ([Node]) -> [Node]) -> [Node] {
        let values = inputs.map(\.value)
        let function: CheckpointedFunction
        let value: Tensor
        if let plans {
            let shapes = plans.forwardPlan(variant: variant, inputs: values, body: body).outputShapes
            function = CheckpointedFunction(body: body, outputShapes: shapes, compiled: (plans, variant))
            value = function.forward(values)
        } else {
            let outputs = body(values.map { Node($0) })
            Graph.check(!outputs.isEmpty, "Tape.checkpoint: the body returned no outputs")
            function = CheckpointedFunction(body: body, outputShapes: outputs.map(\.shape), compiled: nil)
            value = outputs.count == 1
                ? outputs[0].value
                : Tensor.concatenate(outputs.map { $0.value.reshaped(to: [$0.value.count]) }, along: 0)
        }
        let node = record(.checkpoint(function), inputs, value: value)
        guard function.outputShapes.count > 1 else { return [node] }
        var start = 0
        return function.outputShapes.map { shape in
            let count = shape.reduce(1, *)
            defer { start += count }
            return node.slice(along: 0, start..<(start + count)).reshaped(to: shape)
        }
    }
}

/// Compiled forms of checkpoint bodies (``Tape/checkpoint(_:compilingWith:variant:body:)``), kept across
/// training steps by the code that owns the bodies: a forward plan and a backward plan per variant, input
/// shapes and set of inputs wanting gradients. A recurrent layer keeps one for its segments, so the steps
/// inside a checkpoint run the fused kernels of a compiled plan instead of eager nodes.
public final class CheckpointPlans {
    struct Key: Hashable {
        var variant: String
        var shapes: [[Int]]
        var needsGradient: [Bool]
    }

    /// A compiled forward plan with the shapes of its outputs.
    struct Forward {
        let plan: Plan
        let outputShapes: [[Int]]
        func replay(_ inputs: [Tensor]) -> [Tensor] { plan.replay(inputs) }
    }

    private var forwardPlans: [Key: Forward] = [:]
    private var backwardPlans: [Key: Plan] = [:]

    /// Creates an empty store.
    public init() {}

    /// The number of plans kept.
    public var count: Int { forwardPlans.count + backwardPlans.count }

    /// Forgets every plan (call it when the bodies change).
    public func removeAll() {
        forwardPlans.removeAll()
        backwardPlans.removeAll()
    }

    /// The forward plan of `body` for inputs shaped as `inputs`, traced on first use.
    func forwardPlan(variant: String, inputs: [Tensor], body: ([Node]) -> [Node]) -> Forward {
        let key = Key(variant: variant, shapes: inputs.map(\.shape), needsGradient: [])
        if let forward = forwardPlans[key] { return forward }
        let tape = Tape(isTraining: false)
        let nodes = inputs.map { tape.constant($0) }
        let outputs = body(nodes)
        Graph.check(!outputs.isEmpty, "Tape.checkpoint: the body returned no outputs")
        let forward = Forward(plan: Plan(tape: tape, inputs: nodes, outputs: outputs), outputShapes: outputs.map(\.shape))
        forwardPlans[key] = forward
        return forward
    }

    /// The backward plan of `body`: fed the inputs and then the outputs' gradients, it returns the gradients
    /// of the inputs that want one (in order) and adds the parameters' gradients into them.
    func backwardPlan(variant: String, inputs: [Tensor], needsGradient: [Bool], outputShapes: [[Int]],
                      body: ([Node]) -> [Node]) -> Plan {
        let key = Key(variant: variant, shapes: inputs.map(\.shape), needsGradient: needsGradient)
        if let plan = backwardPlans[key] { return plan }
        let tape = Tape(isTraining: false)
        let nodes = zip(inputs, needsGradient).map { value, wanted in wanted ? tape.variable(value) : tape.constant(value) }
        let seeds = outputShapes.map { tape.constant(Tensor.zeros($0)) }
        let outputs = body(nodes)
        // Σ sum(output ⊙ seed) backpropagates exactly `seed` into each output.
        let terms = zip(outputs, seeds).map { ($0 * $1).sum() }
        let root = terms.dropFirst().reduce(terms[0], +)
        let plan = Plan(tape: tape, inputs: nodes + seeds, outputs: [], differentiating: root,
                        gradients: zip(nodes, needsGradient).filter(\.1).map(\.0))
        backwardPlans[key] = plan
        return plan
    }
}
