import Foundation
import Graph
import Layers

/// The one training loop behind `Sequential.fit` and `Model.fit`: epochs, shuffling, batches, the running
/// loss and metrics, validation, progress, history and callbacks. A model supplies the step that trains
/// one batch and the evaluation of validation data; everything else is here, once.
struct FitLoop {
    /// A metric reported for one output, under its key in the logs (`"mae"`, or `"dense_mae"` for one of several).
    struct TrackedMetric {
        let key: String
        let output: Int
        let metric: Metric
    }

    let epochs: Int
    let batchSize: Int
    let shuffle: Bool
    let callbacks: [Callback]
    let verbose: Verbosity
    let seed: UInt64
    let metrics: [TrackedMetric]

    /// Checks the settings every `fit` shares.
    static func checkSettings(epochs: Int, batchSize: Int, validationSplit: Float) throws {
        guard epochs >= 1 else { throw TrainingError.invalidArgument(name: "epochs", value: "\(epochs)", reason: "must be at least 1") }
        guard batchSize >= 1 else { throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)", reason: "must be at least 1") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw TrainingError.invalidArgument(name: "validationSplit", value: "\(validationSplit)", reason: "must lie in [0, 1)")
        }
    }

    /// Splits the last `validationSplit` of the samples (before shuffling) off every array, as Keras does.
    static func split(_ inputs: [Tensor], _ targets: [Tensor], validationSplit: Float) throws
        -> (train: ([Tensor], [Tensor]), validation: ([Tensor], [Tensor])?) {
        guard validationSplit > 0 else { return ((inputs, targets), nil) }
        let samples = inputs[0].shape[0]
        let held = Int(Float(samples) * validationSplit)
        guard held >= 1 && held < samples else {
            throw TrainingError.invalidArgument(name: "validationSplit", value: "\(validationSplit)",
                                                reason: "leaves \(samples - held) training and \(held) validation samples of \(samples)")
        }
        let head = { (t: Tensor) in t.slice(along: 0, 0..<(samples - held)) }
        let tail = { (t: Tensor) in t.slice(along: 0, (samples - held)..<samples) }
        return ((inputs.map(head), targets.map(head)), (inputs.map(tail), targets.map(tail)))
    }

    /// Runs the epochs. `beforeBatch` may reject a batch size; `step` trains one batch (with its rows of
    /// `sampleWeights`, if any) and returns its loss, its outputs' masks (metrics skip masked steps) and
    /// predictions (`nil`: a non-finite loss or gradient, which stops training); `evaluate` gives validation logs.
    func run(model: any TrainableModel, inputs: [Tensor], targets: [Tensor], sampleWeights: Tensor? = nil,
             validation: ([Tensor], [Tensor])?, beforeBatch: (Int) throws -> Void = { _ in },
             step: ([Tensor], [Tensor], Tensor?) throws -> (loss: Float, predictions: [Tensor], masks: [Tensor?])?,
             evaluate: ([Tensor], [Tensor]) throws -> [String: Float]) throws -> History {
        var history = History()
        var generator = SeededGenerator(seed: seed)
        let samples = inputs[0].shape[0]
        let batches = (samples + batchSize - 1) / batchSize
        for callback in callbacks { try callback.trainingWillBegin(model: model) }
        training: for epoch in 0..<epochs {
            for callback in callbacks { try callback.epochWillBegin(epoch, model: model) }
            let start = Date()
            var order = Array(0..<samples)
            if shuffle {
                for i in stride(from: samples - 1, to: 0, by: -1) { order.swapAt(i, generator.nextIndex(below: i + 1)) }
            }
            if verbose == .progressBar { print("Epoch \(epoch + 1)/\(epochs)") }
            var lossTotal = 0.0
            var metricTotals = [(Double, Int)](repeating: (0, 0), count: metrics.count)
            var seen = 0
            for batch in 0..<batches {
                let indices = Array(order[(batch * batchSize)..<min(samples, (batch + 1) * batchSize)])
                let bx = inputs.map { $0.gathering(indices, along: 0) }, by = targets.map { $0.gathering(indices, along: 0) }
                try beforeBatch(indices.count)
                guard let (batchLoss, predictions, masks) = try step(bx, by, sampleWeights?.gathering(indices, along: 0)) else {
                    history.stopReason = "terminated on a non-finite loss or gradient at epoch \(epoch + 1), batch \(batch + 1); the weights are those before that batch"
                    if verbose != .silent { print(history.stopReason!) }
                    break training
                }
                lossTotal += Double(batchLoss) * Double(indices.count)
                for (m, tracked) in metrics.enumerated() {
                    let prediction = predictions[tracked.output]
                    let (sum, count) = tracked.metric.total(prediction, by[tracked.output].gathering(Array(0..<prediction.shape[0]), along: 0),
                                                            mask: masks[tracked.output])
                    metricTotals[m].0 += sum
                    metricTotals[m].1 += count
                }
                seen += indices.count
                if verbose == .progressBar && isatty(1) != 0 {
                    Progress.redraw(step: batch + 1, of: batches, elapsed: Date().timeIntervalSince(start),
                                    logs: [("loss", Float(lossTotal / Double(seen)))])
                }
            }
            var logs: [String: Float] = ["loss": Float(lossTotal / Double(max(seen, 1)))]
            for (m, tracked) in metrics.enumerated() {
                let mean = metricTotals[m].0 / Double(max(metricTotals[m].1, 1))
                logs[tracked.key] = Float(tracked.metric == .rootMeanSquaredError ? mean.squareRoot() : mean)
            }
            if let validation {
                for (key, value) in try evaluate(validation.0, validation.1) { logs["val_" + key] = value }
            }
            history.epochs.append(epoch)
            for (key, value) in logs { history.values[key, default: []].append(value) }
            if verbose != .silent {
                Progress.finish(step: batches, of: batches, elapsed: Date().timeIntervalSince(start), logs: logs,
                                epoch: verbose == .oneLinePerEpoch ? (epoch + 1, epochs) : nil)
            }
            var stop: String?
            for callback in callbacks {
                if case .stop(let reason) = try callback.epochDidEnd(epoch, logs: logs, model: model) { stop = stop ?? reason }
            }
            if let stop {
                history.stopReason = stop
                if verbose != .silent { print(stop) }
                break
            }
        }
        for callback in callbacks { try callback.trainingDidEnd(model: model) }
        return history
    }
}
