import Graph
import Layers

// Sample and class weights (Keras' `sample_weight` and `class_weight`), shared by `Sequential.fit` and `Model.fit`:
// each sample's loss is scaled by its weight, and the batch loss is the weighted sum over the number of
// per-sample loss values (Keras' "sum over batch size"), so weights of 1 give the unweighted loss.

/// Returns the per-sample weights `[samples]` from `sampleWeight` and `classWeight`, or `nil` for neither.
///
/// The class of a sample is its target index (a sparse target), the argmax of a one-hot target, or the rounded
/// value of a single binary target; a target with several indices per sample (a sequence) cannot take class weights.
func resolvedSampleWeights(_ sampleWeight: Tensor?, _ classWeight: [Int: Float]?, target: Tensor) throws -> Tensor? {
    let samples = target.shape[0]
    guard sampleWeight != nil || classWeight != nil else { return nil }
    var weights = [Float](repeating: 1, count: samples)
    if let sampleWeight {
        guard sampleWeight.shape == [samples] || sampleWeight.shape == [samples, 1] else {
            throw TrainingError.shapeMismatch(name: "sampleWeight", expected: [samples], actual: sampleWeight.shape)
        }
        if let bad = sampleWeight.scalars.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw TrainingError.invalidArgument(name: "sampleWeight[\(bad)]", value: "\(sampleWeight.scalars[bad])",
                                                reason: "must be finite and not negative")
        }
        weights = sampleWeight.scalars
    }
    if let classWeight {
        if let (label, bad) = classWeight.first(where: { !$0.value.isFinite || $0.value < 0 }) {
            throw TrainingError.invalidArgument(name: "classWeight[\(label)]", value: "\(bad)", reason: "must be finite and not negative")
        }
        let perSample = target.count / max(samples, 1)
        let values = target.scalars
        for row in 0..<samples {
            let label: Int
            if perSample == 1 {
                label = Int(values[row].rounded())
            } else if target.rank == 2 {
                let slice = values[(row * perSample)..<((row + 1) * perSample)]
                label = slice.indices.max { slice[$0] < slice[$1] }! - row * perSample
            } else {
                throw TrainingError.unsupported("class weights need one class per sample; the targets are \(Array(target.shape.dropFirst())) per sample")
            }
            weights[row] *= classWeight[label] ?? 1
        }
    }
    return Tensor(shape: [samples], scalars: weights)
}

extension Loss {
    /// Returns `Σ w_sample ⊙ loss_position / positions`: each position's loss (the last axis reduced) scaled by
    /// its sample's weight, averaged over all positions.
    public func callAsFunction(_ prediction: Node, _ target: Node, sampleWeights: Tensor) -> Node {
        let positions = perStep(prediction, target)
        let shape = [positions.shape[0]] + Array(repeating: 1, count: positions.shape.count - 1)
        let weighted = positions * prediction.onSameTape(sampleWeights.reshaped(to: shape))
        return weighted.sum() * (1 / Float(positions.value.count))
    }
}

extension TrainableModel {
    /// Checks and resolves `fit`'s weights; truncated BPTT does not take them.
    func sampleWeights(_ sampleWeight: Tensor?, _ classWeight: [Int: Float]?, target: Tensor, isTruncated: Bool) throws -> Tensor? {
        let weights = try resolvedSampleWeights(sampleWeight, classWeight, target: target)
        if weights != nil && isTruncated {
            throw TrainingError.unsupported("sample and class weights cannot be combined with truncated BPTT")
        }
        return weights
    }
}

extension Sequential {
    /// One training step whose loss weighs each sample (an eager tape: a compiled plan has no weights input).
    func trainWeightedStep(_ x: Tensor, _ y: Tensor, weights: Tensor, loss: Loss, optimizer: any Optimizer) -> (Float, Tensor)? {
        let tape = trainingTape
        tape.removeAll()
        defer { tape.removeAll() }
        let prediction = self(tape.constant(x))
        let value = loss(prediction, tape.constant(y), sampleWeights: weights)
        guard value.value.scalar.isFinite else { return nil }
        tape.backward(from: value)
        return applyGradients(optimizer) ? (value.value.scalar, prediction.value) : nil
    }
}
