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
    ///   - seed: fixes the shuffling order.
    ///
    /// A non-finite loss or gradient stops training at once, keeps the last good weights, and sets
    /// ``History/stopReason`` (Keras' `TerminateOnNaN`, always on).
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, epochs: Int = 1, batchSize: Int = 32, validationSplit: Float = 0,
                    validationData: (x: Tensor, y: Tensor)? = nil, shuffle: Bool = true, callbacks: [Callback] = [],
                    verbose: Verbosity = .progressBar, truncatedBPTTSteps: Int? = nil,
                    truncatedBPTTBackwardSteps: Int? = nil, seed: UInt64 = 0) throws -> History {
        guard let loss, let optimizer else { throw TrainingError.notCompiled }
        guard epochs >= 1 else { throw TrainingError.invalidArgument(name: "epochs", value: "\(epochs)", reason: "must be at least 1") }
        guard batchSize >= 1 else { throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)", reason: "must be at least 1") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw TrainingError.invalidArgument(name: "validationSplit", value: "\(validationSplit)", reason: "must lie in [0, 1)")
        }
        let yShaped = try validate(x, y)
        var (trainX, trainY) = (x, yShaped)
        var validation: (x: Tensor, y: Tensor)?
        if let validationData {
            validation = (validationData.x, try validate(validationData.x, validationData.y, names: ("validation x", "validation y")))
        } else if validationSplit > 0 {
            let samples = x.shape[0]
            let held = Int(Float(samples) * validationSplit)
            guard held >= 1 && held < samples else {
                throw TrainingError.invalidArgument(name: "validationSplit", value: "\(validationSplit)",
                                                    reason: "leaves \(samples - held) training and \(held) validation samples of \(samples)")
            }
            validation = (x.slice(along: 0, (samples - held)..<samples), yShaped.slice(along: 0, (samples - held)..<samples))
            trainX = x.slice(along: 0, 0..<(samples - held))
            trainY = yShaped.slice(along: 0, 0..<(samples - held))
        }
        if let k = truncatedBPTTSteps {
            guard k >= 1 else { throw TrainingError.invalidArgument(name: "truncatedBPTTSteps", value: "\(k)", reason: "must be at least 1") }
            guard x.rank == 3 else { throw TrainingError.unsupported("truncated BPTT needs inputs [samples, time, features], got \(x.shape)") }
            if let layer = layers.first(where: { $0 is any WholeSequenceLayer }) {
                throw TrainingError.unsupported("truncated BPTT cannot run \(layer.typeName): it needs the whole sequence at once")
            }
        }
        try checkTruncation(steps: truncatedBPTTSteps, backwardSteps: truncatedBPTTBackwardSteps)
        try checkStatefulTraining(samples: trainX.shape[0], batchSize: batchSize, shuffle: shuffle,
                                  isTruncated: truncatedBPTTSteps != nil)

        var history = History()
        var generator = SeededGenerator(seed: seed)
        let samples = trainX.shape[0]
        let batches = (samples + batchSize - 1) / batchSize
        for callback in callbacks { try callback.trainingWillBegin(model: self) }
        training: for epoch in 0..<epochs {
            for callback in callbacks { try callback.epochWillBegin(epoch, model: self) }
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
                let bx = trainX.gatheringRows(indices), by = trainY.gatheringRows(indices)
                try checkCarriedBatchSize(indices.count)
                let outcome = truncatedBPTTSteps.map {
                    trainTruncated(bx, by, every: $0, backpropagating: truncatedBPTTBackwardSteps ?? $0, loss: loss, optimizer: optimizer)
                }
                    ?? trainStep(bx, by, loss: loss, optimizer: optimizer)
                guard let (batchLoss, prediction) = outcome else {
                    history.stopReason = "terminated on a non-finite loss or gradient at epoch \(epoch + 1), batch \(batch + 1); the weights are those before that batch"
                    if verbose != .silent { print(history.stopReason!) }
                    break training
                }
                lossTotal += Double(batchLoss) * Double(indices.count)
                for (m, metric) in metrics.enumerated() {
                    let (sum, count) = metric.total(prediction, by.gatheringRows(Array(0..<prediction.shape[0])))
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
            for (m, metric) in metrics.enumerated() {
                let mean = metricTotals[m].0 / Double(max(metricTotals[m].1, 1))
                logs[metric.name] = Float(metric == .rootMeanSquaredError ? mean.squareRoot() : mean)
            }
            if let validation {
                for (key, value) in try evaluate(validation.x, validation.y, batchSize: batchSize) { logs["val_" + key] = value }
            }
            history.epochs.append(epoch)
            for (key, value) in logs { history.values[key, default: []].append(value) }
            if verbose != .silent {
                Progress.finish(step: batches, of: batches, elapsed: Date().timeIntervalSince(start), logs: logs,
                                epoch: verbose == .oneLinePerEpoch ? (epoch + 1, epochs) : nil)
            }
            var stop: String?
            for callback in callbacks {
                if case .stop(let reason) = try callback.epochDidEnd(epoch, logs: logs, model: self) { stop = stop ?? reason }
            }
            if let stop {
                history.stopReason = stop
                if verbose != .silent { print(stop) }
                break
            }
        }
        for callback in callbacks { try callback.trainingDidEnd(model: self) }
        return history
    }

    /// Runs one training step on a batch (forward, backward through time, update) and returns its loss,
    /// like Keras' `train_on_batch`. Returns `nil`, leaving the weights unchanged, when the loss or a
    /// gradient is not finite.
    @discardableResult
    public func trainOnBatch(_ x: Tensor, _ y: Tensor) throws -> Float? {
        guard let loss, let optimizer else { throw TrainingError.notCompiled }
        return trainStep(x, try validate(x, y), loss: loss, optimizer: optimizer)?.0
    }

    /// One step on a tape: forward, loss, backward, update. Returns `nil` (and leaves the weights) when
    /// the loss or the gradient is not finite.
    func trainStep(_ x: Tensor, _ y: Tensor, loss: Loss, optimizer: any Optimizer) -> (Float, Tensor)? {
        let key = PlanCache.Key(shapes: [x.shape, y.shape], isTraining: true)
        let compiling = canCompile(loss: loss)
        if compiling, let plan = plans.plan(for: key, model: self) {
            let outputs = plan.replay([x, y])
            guard outputs[0].scalar.isFinite else {
                parameters.forEach { $0.zeroGradient() }
                return nil
            }
            return applyGradients(optimizer) ? (outputs[0].scalar, outputs[1]) : nil
        }
        // One tape per model, cleared each step: its record storage is reused instead of regrown.
        let tape = trainingTape
        tape.removeAll()
        defer { tape.removeAll() }
        let input = tape.constant(x), target = tape.constant(y)
        let prediction = self(input)
        let value = loss(prediction, target)
        guard value.value.scalar.isFinite else { return nil }
        tape.backward(from: value)
        lastTapeNodeCount = tape.count
        lastTapeScalarCount = tape.savedScalarCount
        lastTapePeakScalarCount = tape.peakSavedScalarCount
        if compiling {
            plans.store(Plan(tape: tape, inputs: [input, target], outputs: [value, prediction], differentiating: value),
                        for: key, model: self)
        }
        return applyGradients(optimizer) ? (value.value.scalar, prediction.value) : nil
    }

    /// Updates the weights from their gradients unless a gradient is not finite; clears the gradients.
    func applyGradients(_ optimizer: any Optimizer) -> Bool {
        let parameters = self.parameters
        defer { parameters.forEach { $0.zeroGradient() } }
        let finite = parameters.allSatisfy { parameter in
            parameter.gradient.map { $0.withUnsafeBufferPointer { $0.allSatisfy(\.isFinite) } } ?? true
        }
        guard finite else { return false }
        optimizer.update(parameters)
        layers.forEach { $0.applyConstraints() }
        return true
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
        var outputs: [Tensor] = []
        var start = 0
        while start < x.shape[0] {
            let end = min(x.shape[0], start + batchSize)
            outputs.append(infer(x.slice(along: 0, start..<end)))
            start = end
        }
        return outputs.count == 1 ? outputs[0] : Tensor.concatenate(outputs, along: 0)
    }

    /// Returns the loss and the compiled metrics on `x` and `y`, without training.
    public func evaluate(_ x: Tensor, _ y: Tensor, batchSize: Int = 32) throws -> [String: Float] {
        guard let loss else { throw TrainingError.notCompiled }
        let target = try validate(x, y)
        let prediction = try predict(x, batchSize: batchSize)
        var result = ["loss": loss(Node(prediction), Node(target)).value.scalar]
        for metric in metrics {
            let (sum, count) = metric.total(prediction, target)
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
        guard Array(x.shape.dropFirst()) == inputShape else {
            throw TrainingError.shapeMismatch(name: names.0, expected: inputShape, actual: Array(x.shape.dropFirst()))
        }
        for (tensor, name) in [(x, names.0), (y, names.1)] {
            if let bad = tensor.withUnsafeBufferPointer({ $0.firstIndex { !$0.isFinite } }) {
                throw TrainingError.nonFinite(name: name, index: bad)
            }
        }
        if let embedding = layers.first as? Embedding {
            try checkIndices(x, below: embedding.vocabularySize, name: names.0)
        }
        let perSample = Array(y.shape.dropFirst())
        if case .sparseCategoricalCrossEntropy = loss {
            try checkIndices(y, below: outputShape.last ?? 1, name: names.1)
            let expected = Array(outputShape.dropLast())
            guard perSample.reduce(1, *) == expected.reduce(1, *) else {
                throw TrainingError.shapeMismatch(name: names.1, expected: expected, actual: perSample)
            }
            return y.reshaped(to: [y.shape[0]] + expected)
        }
        guard perSample.reduce(1, *) == outputShape.reduce(1, *) else {
            throw TrainingError.shapeMismatch(name: names.1, expected: outputShape, actual: perSample)
        }
        return y.reshaped(to: [y.shape[0]] + outputShape)
    }
}

extension Sequential {
    /// Throws unless every element of `tensor` is a whole number in `0..<count` (class or token indices).
    func checkIndices(_ tensor: Tensor, below count: Int, name: String) throws {
        let bad = tensor.withUnsafeBufferPointer { values in
            values.firstIndex { $0 < 0 || $0 >= Float(count) || $0.rounded() != $0 }
        }
        if let bad {
            throw TrainingError.invalidArgument(name: "\(name)[\(bad)]", value: "\(tensor.scalars[bad])",
                                                reason: "must be a whole number in 0..<\(count) (an index)")
        }
    }
}

extension Tensor {
    /// Returns the rows (entries of axis 0) at `indices`, in that order.
    func gatheringRows(_ indices: [Int]) -> Tensor {
        let width = count / Swift.max(shape[0], 1)
        var result = Tensor.zeros([indices.count] + shape.dropFirst())
        withUnsafeBufferPointer { source in
            result.withUnsafeMutableBufferPointer { target in
                for (row, index) in indices.enumerated() {
                    (target.baseAddress! + row * width).update(from: source.baseAddress! + index * width, count: width)
                }
            }
        }
        return result
    }
}
