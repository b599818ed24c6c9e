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

    init(body: @escaping ([Node]) -> [Node], outputShapes: [[Int]]) {
        self.body = body
        self.outputShapes = outputShapes
    }

    /// Whether both are the same recording.
    public static func == (lhs: CheckpointedFunction, rhs: CheckpointedFunction) -> Bool { lhs === rhs }

    /// Runs the body again on a fresh tape with `inputs` as variables (constants where `needsGradient` is
    /// false), backpropagates `outputGradients` from its outputs (parameters put on the tape inside (`onSameTape`) receive their
    /// gradients there), and returns the inputs' gradients (`nil` where none is wanted).
    func recompute(inputs: [Tensor], needsGradient: [Bool], outputGradients: [Tensor]) -> [Tensor?] {
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
    /// - Parameters:
    ///   - inputs: nodes on this tape (or untaped, recorded as constants).
    ///   - body: a function of nodes that records nothing but what it computes from them and from
    ///     parameters it puts on the same tape.
    /// - Returns: the outputs of `body`, in order, on this tape.
    public func checkpoint(_ inputs: [Node], body: @escaping ([Node]) -> [Node]) -> [Node] {
        let outputs = body(inputs.map { Node($0.value) })
        Graph.check(!outputs.isEmpty, "Tape.checkpoint: the body returned no outputs")
        let function = CheckpointedFunction(body: body, outputShapes: outputs.map(\.shape))
        let value = outputs.count == 1
            ? outputs[0].value
            : Tensor.concatenate(outputs.map { $0.value.reshaped(to: [$0.value.count]) }, along: 0)
        let node = record(.checkpoint(function), inputs, value: value)
        guard outputs.count > 1 else { return [node] }
        var start = 0
        return outputs.map { output in
            defer { start += output.value.count }
            return node.slice(along: 0, start..<(start + output.value.count)).reshaped(to: output.shape)
        }
    }
}
