import Graph
import Layers

// Truncated BPTT and stateful training for functional models, through the code `Sequential` uses
// (`TruncatedBPTT.swift`, `StatefulTraining.swift`). A layer graph allows more than a stack does, so what those
// assume of a stack is checked here and refused with a reason rather than run wrongly.

extension Model {
    /// Throws unless truncated BPTT can cut this model's data into windows: one input `[samples, time, features]`
    /// (every input would need the same time axis, and the windows one loss over one output), no layer that
    /// needs the whole sequence, and no recurrent layer started from other tensors' values (its initial state
    /// would replace the state each window carries).
    func checkTruncation(_ x: [Tensor]) throws {
        guard inputs.count == 1, outputs.count == 1 else {
            throw TrainingError.unsupported("truncated BPTT cuts one input into windows along time and scores one output; "
                                            + "this model has \(inputs.count) inputs and \(outputs.count) outputs")
        }
        try TruncatedBPTT.checkLayers(of: self, input: x[0])
        for call in calls where call.layer is any StatefulRecurrentLayer && call.inputs.count > 1 {
            throw TrainingError.unsupported("truncated BPTT carries each recurrent layer's state from window to window, "
                                            + "but \(name(of: call.layer)) starts from an initial state given by other layers")
        }
    }

    /// Throws when a recurrent layer that carries its state between calls (stateful, or made so by truncated
    /// BPTT) is called more than once: one carried state cannot continue several sequences.
    func checkCarriedStates(isTruncated: Bool) throws {
        var counts: [ObjectIdentifier: Int] = [:]
        for call in calls { counts[ObjectIdentifier(call.layer), default: 0] += 1 }
        for layer in layers {
            guard let recurrent = layer as? any StatefulRecurrentLayer, recurrent.isStateful || isTruncated,
                  let count = counts[ObjectIdentifier(layer)], count > 1 else { continue }
            let why = isTruncated ? "truncated BPTT carries its state between windows" : "it is stateful"
            throw TrainingError.unsupported("\(name(of: layer)) is called \(count) times and \(why): one carried state "
                                            + "cannot continue \(count) sequences")
        }
    }

    /// Truncated BPTT over this model's one input and one output, with its losses (masked steps left out), each
    /// window a step of the model's plan cache.
    func truncatedBPTT(steps: Int, backwardSteps: Int, optimizer: any Optimizer) -> TruncatedBPTT {
        let compiling = canCompile(), classes = outputs[0].shape.last
        let windowLosses = compiling ? losses.map { $0.compiledLoss(classes: classes) } : losses
        return TruncatedBPTT(steps: steps, backwardSteps: backwardSteps, model: self, step: { feeds, record in
            self.plans.trainingStep(feeds: feeds, compiling: compiling, model: self, tape: self.trainingTape,
                                    optimizer: optimizer, record: record)
        }, advance: { chunk in
            _ = self.plans.inference([chunk], compiling: compiling, model: self) { nodes in
                let (values, masks) = self.run(nodes)
                return (values, masks.allSatisfy { $0 == nil })
            }
        }, target: { compiling ? self.losses[0].compiled(target: $0, classes: classes).target : $0 },
                             forward: { input in
                                 let (outputs, masks) = self.run([input])
                                 return (outputs[0], masks[0])
                             },
                             loss: { prediction, target, mask in
                                 self.totalLoss([prediction], [target], losses: windowLosses, masks: [mask])
                             })
    }
}
