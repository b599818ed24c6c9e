import Graph
import Layers

// Truncated backpropagation through time, BPTT(k1, k2) in Williams and Peng's notation (1990): every k1 steps,
// the loss of those k1 newest steps is backpropagated through the last k2 ≥ k1 steps, starting from the state
// carried forward (its gradient stopped). k1 = k2 cuts the sequence into independent chunks; k2 > k1 lets
// each update see k2 - k1 steps of context before the steps it is scored on, at k2/k1 times the compute.

/// Truncated BPTT of one model with one input `[batch, time, features]` and one output, shared by `Sequential`
/// and the functional `Model`: the model supplies its forward pass and its loss, the windows and the carried
/// state are handled here. Each window is one training step of the model's ``PlanCache``, so windows compile
/// like any step: the carried state is a plan input (``CarriedStates``), one plan serves every full window and
/// another the last partial one. The forward runs that only advance the state (k2 > k1) replay forward plans.
struct TruncatedBPTT {
    /// k1: the steps between updates.
    let steps: Int
    /// k2 ≥ k1: the steps each update backpropagates through.
    let backwardSteps: Int
    let model: any TrainableModel
    /// One training step of the model on these feeds (a window, then its targets as fed), compiled or eager
    /// (``PlanCache/trainingStep(feeds:compiling:model:tape:optimizer:record:recorded:)``).
    let step: (_ feeds: [Tensor], _ record: ([Node]) -> (loss: Node, outputs: [Node], isTraceable: Bool)) -> (loss: Float, outputs: [Tensor])?
    /// Runs the model on a chunk without training, only to move the carried state on (a forward plan fed the
    /// state, like `predict`, or untaped nodes when eager).
    let advance: (Tensor) -> Void
    /// The targets as a step is fed them (a compiled step's sparse targets as one-hot, matching ``loss``).
    let target: (Tensor) -> Tensor
    /// The model's output and its mask for an input (recording onto the input's tape if it has one).
    let forward: (Node) -> (output: Node, mask: Tensor?)
    /// The loss of the scored outputs against their targets, leaving masked steps out.
    let loss: (_ prediction: Node, _ target: Node, _ mask: Tensor?) -> Node

    /// Throws unless `steps` (k1) and `backwardSteps` (k2) make a truncation: k1 ≥ 1, k2 ≥ k1, k2 only with k1.
    static func check(steps: Int?, backwardSteps: Int?) throws {
        if let steps, steps < 1 {
            throw TrainingError.invalidArgument(name: "truncatedBPTTSteps", value: "\(steps)", reason: "must be at least 1")
        }
        guard let backwardSteps else { return }
        guard let steps else {
            throw TrainingError.invalidArgument(name: "truncatedBPTTBackwardSteps", value: "\(backwardSteps)",
                                                reason: "needs truncatedBPTTSteps (the steps between updates)")
        }
        guard backwardSteps >= steps else {
            throw TrainingError.invalidArgument(name: "truncatedBPTTBackwardSteps", value: "\(backwardSteps)",
                                                reason: "must be at least truncatedBPTTSteps (\(steps))")
        }
    }

    /// Throws when `model` has a layer that cannot run on consecutive chunks of a sequence.
    static func checkLayers(of model: some TrainableModel, input: Tensor) throws {
        guard input.rank == 3 else {
            throw TrainingError.unsupported("truncated BPTT needs inputs [samples, time, features], got \(input.shape)")
        }
        if let layer = model.layers.first(where: { $0 is any WholeSequenceLayer }) {
            throw TrainingError.unsupported("truncated BPTT cannot run \(layer.typeName): it needs the whole sequence at once")
        }
    }

    /// Trains one batch `[batch, time, features]`: one update every k1 steps, backpropagating through the last
    /// k2. Returns the mean window loss, the predictions and their mask, or `nil` (weights as before the failing
    /// window) when a loss or gradient is not finite.
    func train(_ x: Tensor, _ y: Tensor) -> (loss: Float, prediction: Tensor, mask: Tensor?)? {
        let recurrent = model.layers.compactMap { $0 as? any StatefulRecurrentLayer }
        let wasStateful = recurrent.map(\.isStateful)
        for layer in recurrent { layer.isStateful = true }
        defer {
            for (layer, flag) in zip(recurrent, wasStateful) { layer.isStateful = flag }
            model.resetStates()
        }
        model.resetStates()
        func carried() -> [[Tensor]?] { recurrent.map(\.carriedState) }
        func carry(_ states: [[Tensor]?]) { for (layer, state) in zip(recurrent, states) { layer.carriedState = state } }
        let (k1, k2) = (steps, backwardSteps)

        let time = x.shape[1]
        guard y.rank >= 2 && y.shape[1] == time else {
            // One target per sequence: the steps before the last k2 only advance the state.
            let start = max(0, time - k2)
            if start > 0 { advance(x.slice(along: 1, 0..<start)) }
            return trainWindow(x.slice(along: 1, start..<time), y, scoredSteps: 0..<(time - start))
        }
        var losses: [Float] = []
        var predictions: [Tensor] = [], masks: [Tensor?] = []
        var startState = carried()
        var end = 0
        while end < time {
            let newEnd = min(time, end + k1)
            let start = max(0, newEnd - k2)
            let nextStart = max(0, min(time, newEnd + k1) - k2)
            // The next window starts inside this one: run up to there without training (the same weights and
            // values as the training step below) to keep the state it starts from. One starting where this one
            // ends (k1 = k2) starts from this window's final state.
            var nextState = startState
            if nextStart > start && nextStart < newEnd {
                advance(x.slice(along: 1, start..<nextStart))
                nextState = carried()
                carry(startState)
            }
            guard let (value, prediction, mask) = trainWindow(x.slice(along: 1, start..<newEnd), y.slice(along: 1, end..<newEnd),
                                                              scoredSteps: (end - start)..<(newEnd - start)) else { return nil }
            losses.append(value)
            predictions.append(prediction)
            masks.append(mask)
            if nextStart == newEnd { nextState = carried() }
            carry(nextState)
            startState = nextState
            end = newEnd
        }
        let mask = masks.contains { $0 == nil } ? nil : Tensor.concatenate(masks.map { $0! }, along: 1)
        return (losses.reduce(0, +) / Float(losses.count), Tensor.concatenate(predictions, along: 1), mask)
    }

    /// One update on a window: forward, the loss of the outputs at `scoredSteps` (all of them for a model
    /// without a time axis in its output), backward, update. The window's length and its targets' decide
    /// `scoredSteps` (it ends at the window's end), so the feeds' shapes key the plan.
    func trainWindow(_ x: Tensor, _ y: Tensor, scoredSteps: Range<Int>) -> (Float, Tensor, Tensor?)? {
        var mask: Tensor?
        let outcome = step([x, target(y)]) { nodes in
            var (prediction, outputMask) = forward(nodes[0])
            if prediction.shape.count >= 2, prediction.shape[1] == x.shape[1], scoredSteps.count < x.shape[1] {
                prediction = prediction.slice(along: 1, scoredSteps)
                outputMask = outputMask?.slice(along: 1, scoredSteps)
            }
            mask = outputMask
            return (loss(prediction, nodes[1], outputMask), [prediction], outputMask == nil)
        }
        return outcome.map { ($0.loss, $0.outputs[0], mask) }
    }
}
