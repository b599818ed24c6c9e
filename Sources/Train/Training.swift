import Foundation
import Graph
import Layers

/// How much `fit` prints.
public enum Verbosity: Sendable {
    /// Nothing.
    case silent
    /// Keras' `verbose=1`: an epoch header and a progress bar with the running loss (redrawn on a terminal).
    case progressBar
    /// Keras' `verbose=2`: one line per epoch.
    case oneLinePerEpoch
}

extension Sequential {
    /// Trains the model on `x` (`[samples, ...inputShape]`) and `y` (`[samples, ...outputShape]`) and
    /// returns the per-epoch history.
    ///
    /// - Parameters:
    ///   - validationSplit: the fraction of samples, taken from the end before shuffling, held out for validation.
    ///   - validationData: explicit validation arrays (overrides `validationSplit`).
    ///   - truncatedBPTTSteps: truncated backpropagation through time (Williams and Peng's k1): one update
    ///     every this many steps, the recurrent state carried forward with its gradient stopped. Targets with a
    ///     time axis as long as the input's are trained window by window; otherwise earlier steps only advance
    ///     the state and the last `truncatedBPTTBackwardSteps` are trained.
    ///   - truncatedBPTTBackwardSteps: how many steps each update backpropagates through (k2 ≥ k1; default
    ///     k1): the loss of the newest k1 steps flows back over the last k2 (`Docs/LongSequences.md`).
    ///   - sampleWeight: one weight per sample `[samples]`, scaling its loss (Keras' `sample_weight`).
    ///   - classWeight: a weight per class index, given to every sample of that class (Keras' `class_weight`);
    ///     multiplies `sampleWeight` when both are given.
    ///   - seed: fixes the shuffling order.
    ///
    /// A non-finite loss or gradient stops training at once, keeps the last good weights, and sets
    /// ``History/stopReason`` (Keras' `TerminateOnNaN`, always on).
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, epochs: Int = 1, batchSize: Int = 32, validationSplit: Float = 0,
                    validationData: (x: Tensor, y: Tensor)? = nil, shuffle: Bool = true, callbacks: [Callback] = [],
                    verbose: Verbosity = .progressBar, truncatedBPTTSteps: Int? = nil,
                    truncatedBPTTBackwardSteps: Int? = nil, sampleWeight: Tensor? = nil, classWeight: [Int: Float]? = nil,
                    seed: UInt64 = 0) throws -> History {
        guard let loss, let optimizer else { throw TrainingError.notCompiled }
        try FitLoop.checkSettings(epochs: epochs, batchSize: batchSize, validationSplit: validationSplit)
        let yShaped = try validate(x, y)
        var (trainX, trainY) = (x, yShaped)
        var validation: ([Tensor], [Tensor])?
        if let validationData {
            validation = ([validationData.x], [try validate(validationData.x, validationData.y, names: ("validation x", "validation y"))])
        } else {
            let split = try FitLoop.split([x], [yShaped], validationSplit: validationSplit)
            (trainX, trainY) = (split.train.0[0], split.train.1[0])
            validation = split.validation
        }
        try TruncatedBPTT.check(steps: truncatedBPTTSteps, backwardSteps: truncatedBPTTBackwardSteps)
        if truncatedBPTTSteps != nil { try TruncatedBPTT.checkLayers(of: self, input: x) }
        try checkStatefulTraining(samples: trainX.shape[0], batchSize: batchSize, shuffle: shuffle,
                                  isTruncated: truncatedBPTTSteps != nil)

        let loop = FitLoop(epochs: epochs, batchSize: batchSize, shuffle: shuffle, callbacks: callbacks, verbose: verbose,
                           seed: seed, metrics: metrics.map { .init(key: $0.name, output: 0, metric: $0) })
        let weights = try sampleWeights(sampleWeight, classWeight, target: yShaped, isTruncated: truncatedBPTTSteps != nil)
        let compiling = canCompile(), classes = outputShape?.last
        let windowLoss = compiling ? loss.compiledLoss(classes: classes) : loss
        let truncation = truncatedBPTTSteps.map { k1 in
            TruncatedBPTT(steps: k1, backwardSteps: truncatedBPTTBackwardSteps ?? k1, model: self, step: { feeds, record in
                self.plans.trainingStep(feeds: feeds, compiling: compiling, model: self, tape: self.trainingTape,
                                        optimizer: optimizer, record: record, recorded: self.noteTape)
            }, advance: { _ = self.infer($0) }, target: { compiling ? loss.compiled(target: $0, classes: classes).target : $0 },
                          forward: { self.run($0) },
                          loss: { prediction, target, mask in
                              mask.map { windowLoss(prediction, target, mask: $0) } ?? windowLoss(prediction, target)
                          })
        }
        return try loop.run(model: self, inputs: [trainX], targets: [trainY],
                            sampleWeights: weights?.slice(along: 0, 0..<trainX.shape[0]), validation: validation,
                            beforeBatch: checkCarriedBatchSize, step: { bx, by, bw in
            if let bw { return trainWeightedStep(bx[0], by[0], weights: bw, loss: loss, optimizer: optimizer).map { ($0.0, [$0.1], [nil]) } }
            let outcome = truncation.map { $0.train(bx[0], by[0]) } ?? trainStep(bx[0], by[0], loss: loss, optimizer: optimizer)
            return outcome.map { ($0.loss, [$0.prediction], [$0.mask]) }
        }, evaluate: { try evaluate($0[0], $1[0], batchSize: batchSize) })
    }

    /// Runs one training step on a batch (forward, backward through time, update) and returns its loss,
    /// like Keras' `train_on_batch`. Returns `nil`, leaving the weights unchanged, when the loss or a
    /// gradient is not finite.
    @discardableResult
    public func trainOnBatch(_ x: Tensor, _ y: Tensor) throws -> Float? {
        guard let loss, let optimizer else { throw TrainingError.notCompiled }
        return trainStep(x, try validate(x, y), loss: loss, optimizer: optimizer)?.loss
    }

    /// One step: forward, loss, backward, update, replaying a compiled plan when it can
    /// (``PlanCache/trainingStep(feeds:compiling:model:tape:optimizer:record:recorded:)``). Returns the loss, the
    /// prediction and its mask, or `nil` (and leaves the weights) when the loss or the gradient is not finite.
    func trainStep(_ x: Tensor, _ y: Tensor, loss: Loss, optimizer: any Optimizer) -> (loss: Float, prediction: Tensor, mask: Tensor?)? {
        var mask: Tensor?
        let compiling = canCompile()
        let (stepLoss, target) = compiling ? loss.compiled(target: y, classes: outputShape?.last) : (loss, y)
        let outcome = plans.trainingStep(feeds: [x, target], compiling: compiling, model: self, tape: trainingTape,
                                         optimizer: optimizer, record: { nodes in
            let (prediction, outputMask) = run(nodes[0])
            mask = outputMask
            let value = outputMask.map { stepLoss(prediction, nodes[1], mask: $0) } ?? stepLoss(prediction, nodes[1])
            return (value, [prediction], outputMask == nil)
        }, recorded: noteTape)
        return outcome.map { ($0.loss, $0.outputs[0], mask) }
    }

    /// Keeps the size of a training step's tape for inspection.
    func noteTape(_ tape: Tape) {
        lastTapeNodeCount = tape.count
        lastTapeScalarCount = tape.savedScalarCount
        lastTapePeakScalarCount = tape.peakSavedScalarCount
    }

    /// Returns the model's outputs for `x`, computed in batches without recording a tape (flat memory).
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor {
        guard let inputShape else { throw TrainingError.missingInputShape(layer: layers.first?.typeName ?? "model") }
        _ = try layerShapes()
        guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.emptyData(name: "x") }
        guard Array(x.shape.dropFirst()) == inputShape else {
            throw TrainingError.shapeMismatch(name: "x", expected: inputShape, actual: Array(x.shape.dropFirst()))
        }
        guard batchSize >= 1 else { throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)", reason: "must be at least 1") }
        if let embedding = layers.first as? Embedding { try checkIndices(x, below: embedding.vocabularySize, name: "x") }
        return try predictWithMask(x, batchSize: batchSize).output
    }

    /// The outputs for `x` and their mask, in batches without a tape.
    func predictWithMask(_ x: Tensor, batchSize: Int) throws -> (output: Tensor, mask: Tensor?) {
        var outputs: [Tensor] = [], masks: [Tensor] = []
        var start = 0
        while start < x.shape[0] {
            let end = min(x.shape[0], start + batchSize)
            let (output, mask) = infer(x.slice(along: 0, start..<end))
            outputs.append(output)
            if let mask { masks.append(mask) }
            start = end
        }
        let joined = { (parts: [Tensor]) in parts.count == 1 ? parts[0] : Tensor.concatenate(parts, along: 0) }
        return (joined(outputs), masks.count == outputs.count ? joined(masks) : nil)
    }

    /// Returns the loss and the compiled metrics on `x` and `y`, without training; masked steps count in neither.
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32) throws -> [String: Float] {
        guard let loss else { throw TrainingError.notCompiled }
        let target = try validate(x, y)
        let (prediction, mask) = try predictWithMask(x, batchSize: batchSize)
        let (predicted, expected) = (Node(prediction), Node(target))
        var result = ["loss": (mask.map { loss(predicted, expected, mask: $0) } ?? loss(predicted, expected)).value.scalar]
        for metric in metrics {
            let (sum, count) = metric.total(prediction, target, mask: mask)
            let mean = sum / Double(max(count, 1))
            result[metric.name] = Float(metric == .rootMeanSquaredError ? mean.squareRoot() : mean)
        }
        return result
    }

    /// Checks samples, shapes and values; returns `y` reshaped to the model's output shape when only
    /// its layout differs (`[n, m, 1]` for an output `[m]`).
    func validate(_ x: Tensor, _ y: Tensor, names: (String, String) = ("x", "y")) throws -> Tensor {
        guard let inputShape else { throw TrainingError.missingInputShape(layer: layers.first?.typeName ?? "model") }
        let outputShape = try layerShapes().last!
        guard x.rank >= 1, x.shape[0] > 0 else { throw TrainingError.emptyData(name: names.0) }
        guard y.rank >= 1, y.shape[0] > 0 else { throw TrainingError.emptyData(name: names.1) }
        guard x.shape[0] == y.shape[0] else { throw TrainingError.sampleCountMismatch(inputs: x.shape[0], targets: y.shape[0]) }
        try checkInput(x, shape: inputShape, name: names.0)
        if let embedding = layers.first as? Embedding {
            try checkIndices(x, below: embedding.vocabularySize, name: names.0)
        }
        return try checkedTarget(y, outputShape: outputShape, loss: loss, name: names.1)
    }
}
