import Graph
import Layers

// Truncated backpropagation through time, BPTT(k1, k2) in Williams and Peng's notation (1990): every k1 steps,
// the loss of those k1 newest steps is backpropagated through the last k2 ≥ k1 steps, starting from the state
// carried forward (its gradient stopped). k1 = k2 cuts the sequence into independent chunks; k2 > k1 lets
// each update see k2 - k1 steps of context before the steps it is scored on, at k2/k1 times the compute.

extension Sequential {
    /// Throws unless `steps` (k1) and `backwardSteps` (k2) make a truncation: k1 ≥ 1, k2 ≥ k1, k2 only with k1.
    func checkTruncation(steps: Int?, backwardSteps: Int?) throws {
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

    /// Truncated backpropagation through time on one batch `[batch, time, features]`: one update every `k1`
    /// steps, backpropagating through the last `k2`. Returns the mean window loss and the predictions, or
    /// `nil` (weights as before the failing window) when a loss or gradient is not finite.
    func trainTruncated(_ x: Tensor, _ y: Tensor, every k1: Int, backpropagating k2: Int, loss: Loss,
                        optimizer: any Optimizer) -> (Float, Tensor)? {
        let recurrent = layers.compactMap { $0 as? any StatefulRecurrentLayer }
        let wasStateful = recurrent.map(\.isStateful)
        for layer in recurrent { layer.isStateful = true }
        defer {
            for (layer, flag) in zip(recurrent, wasStateful) { layer.isStateful = flag }
            resetStates()
        }
        resetStates()
        func carried() -> [[Tensor]?] { recurrent.map(\.carriedState) }
        func carry(_ states: [[Tensor]?]) { for (layer, state) in zip(recurrent, states) { layer.carriedState = state } }

        let time = x.shape[1]
        guard y.rank >= 2 && y.shape[1] == time else {
            // One target per sequence: the steps before the last k2 only advance the state.
            let start = max(0, time - k2)
            if start > 0 { _ = self(Node(x.slice(along: 1, 0..<start))) }
            return trainWindow(x.slice(along: 1, start..<time), y, scoredSteps: 0..<(time - start), loss: loss, optimizer: optimizer)
        }
        var losses: [Float] = []
        var predictions: [Tensor] = []
        var startState = carried()
        var end = 0
        while end < time {
            let newEnd = min(time, end + k1)
            let start = max(0, newEnd - k2)
            let nextStart = max(0, min(time, newEnd + k1) - k2)
            // The next window starts inside this one: run up to there without a tape (the same weights and
            // values as the taped run below) to keep the state it starts from.
            var nextState = startState
            if nextStart > start {
                _ = self(Node(x.slice(along: 1, start..<nextStart)))
                nextState = carried()
                carry(startState)
            }
            guard let (value, prediction) = trainWindow(x.slice(along: 1, start..<newEnd), y.slice(along: 1, end..<newEnd),
                                                        scoredSteps: (end - start)..<(newEnd - start),
                                                        loss: loss, optimizer: optimizer) else { return nil }
            losses.append(value)
            predictions.append(prediction)
            carry(nextState)
            startState = nextState
            end = newEnd
        }
        return (losses.reduce(0, +) / Float(losses.count), Tensor.concatenate(predictions, along: 1))
    }

    /// One update on a window: forward on the training tape, the loss of the outputs at `scoredSteps`
    /// (all of them for a model without a time axis in its output), backward, update.
    func trainWindow(_ x: Tensor, _ y: Tensor, scoredSteps: Range<Int>, loss: Loss, optimizer: any Optimizer) -> (Float, Tensor)? {
        let tape = trainingTape
        tape.removeAll()
        defer { tape.removeAll() }
        var prediction = self(tape.constant(x))
        if prediction.shape.count >= 2, prediction.shape[1] == x.shape[1], scoredSteps.count < x.shape[1] {
            prediction = prediction.slice(along: 1, scoredSteps)
        }
        let value = loss(prediction, tape.constant(y))
        guard value.value.scalar.isFinite else { return nil }
        tape.backward(from: value)
        lastTapeNodeCount = tape.count
        lastTapeScalarCount = tape.savedScalarCount
        lastTapePeakScalarCount = tape.peakSavedScalarCount
        return applyGradients(optimizer) ? (value.value.scalar, prediction.value) : nil
    }
}
