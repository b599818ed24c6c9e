import Graph
import Layers

// Stateful training follows Keras' rules: row i of every batch continues row i of the batch before, so the
// batches must all have one size and must not be shuffled, and a state carried for another batch size is an
// error rather than a silent reset to zeros. `Sequential` and the functional `Model` share these checks.

extension TrainableModel {
    /// The recurrent layers that carry their final state into the next batch.
    var statefulLayers: [any StatefulRecurrentLayer] {
        layers.compactMap { $0 as? any StatefulRecurrentLayer }.filter(\.isStateful)
    }

    /// Throws when `fit`'s settings break the rules of stateful layers.
    func checkStatefulTraining(samples: Int, batchSize: Int, shuffle: Bool, isTruncated: Bool) throws {
        guard let layer = statefulLayers.first else { return }
        if isTruncated {
            throw TrainingError.unsupported("truncated BPTT starts every batch from zeros; it cannot train the stateful "
                                            + "layer \(layer.typeName)")
        }
        if shuffle {
            throw TrainingError.invalidArgument(name: "shuffle", value: "true",
                                                reason: "the stateful layer \(layer.typeName) carries row i of a batch into row i "
                                                + "of the next: pass shuffle: false")
        }
        if samples % batchSize != 0 {
            throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)",
                                                reason: "the stateful layer \(layer.typeName) needs batches of one size, "
                                                + "but \(samples) training samples leave a last batch of \(samples % batchSize)")
        }
    }

    /// Throws when a stateful layer carries a state for batches of another size than `batchSize`.
    func checkCarriedBatchSize(_ batchSize: Int) throws {
        for layer in statefulLayers {
            if let rows = layer.carriedState?.first?.shape.first, rows != batchSize {
                throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)",
                                                    reason: "the stateful layer \(layer.typeName) carries a state for batches "
                                                    + "of \(rows); call resetStates() before changing the batch size")
            }
        }
    }
}

/// Clears the state of stateful layers before training and at the end of every epoch, so that each epoch
/// reads its sequences from their start (the usual companion of `isStateful: true`).
public final class ResetStates: Callback {
    /// Creates the callback.
    public init() {}

    /// Starts from zeros.
    public func trainingWillBegin(model: any TrainableModel) throws {
        model.resetStates()
    }

    /// Resets after the epoch (and its validation).
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        model.resetStates()
        return .proceed
    }
}
