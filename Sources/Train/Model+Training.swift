import Foundation
import Graph
import Layers
import Serialization

extension Model: TrainableModel {
    /// The name of the layer that makes each output, the prefix of its log keys (`"dense_loss"`).
    public var outputNames: [String] { outputs.map { name(of: $0.call.layer) } }

    /// Sets one loss, optimizer and metrics for every output.
    public func compile(loss: Loss, optimizer: any Optimizer, metrics: [Metric] = [], jitCompile: Bool = true) throws {
        try compile(losses: Array(repeating: loss, count: outputs.count), optimizer: optimizer,
                    metrics: Array(repeating: metrics, count: outputs.count), jitCompile: jitCompile)
    }

    /// Sets a loss (and metrics) per output, in the order of ``outputs``; the training loss is
    /// `Σ lossWeights[i] · losses[i]` (weights default to ones), as Keras' `loss=[...]`, `loss_weights=[...]`.
    ///
    /// With `jitCompile` (the default, as for `Sequential`) the first training step for each set of input and
    /// target shapes is traced into a ``Plan`` that later steps replay, and inference likewise; `false` runs
    /// every step eagerly. The same steps run eagerly either way as in `Sequential`: layers whose recording
    /// depends on more than shapes (dropping recurrent layers, active dropout, embeddings, masking) and sample
    /// or class weights; stateful layers and truncated BPTT windows compile with the carried state as a plan
    /// input. Sparse targets are fed to a plan as their one-hot, which the sparse loss would otherwise freeze as
    /// a constant.
    public func compile(losses: [Loss], lossWeights: [Float]? = nil, optimizer: any Optimizer,
                        metrics: [[Metric]] = [], jitCompile: Bool = true) throws {
        try optimizer.checkSettings()
        let weights = lossWeights ?? Array(repeating: 1, count: outputs.count)
        for (name, count) in [("losses", losses.count), ("lossWeights", weights.count)] where count != outputs.count {
            throw TrainingError.invalidArgument(name: name, value: "\(count) entries", reason: "the model has \(outputs.count) outputs")
        }
        guard metrics.isEmpty || metrics.count == outputs.count else {
            throw TrainingError.invalidArgument(name: "metrics", value: "\(metrics.count) lists", reason: "the model has \(outputs.count) outputs")
        }
        if let bad = weights.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw TrainingError.invalidArgument(name: "lossWeights[\(bad)]", value: "\(weights[bad])", reason: "must be finite and non-negative")
        }
        self.losses = losses
        self.lossWeights = weights
        self.metrics = metrics.isEmpty ? Array(repeating: [], count: outputs.count) : metrics
        self.optimizer = optimizer
        self.jitCompile = jitCompile
        plans.removeAll()
    }

    /// Sets losses, loss weights and metrics keyed by output name (``outputNames``), as Keras' dictionaries;
    /// an output without a loss is not trained, and an unknown name throws.
    public func compile(losses: [String: Loss], lossWeights: [String: Float] = [:], optimizer: any Optimizer,
                        metrics: [String: [Metric]] = [:], jitCompile: Bool = true) throws {
        let names = outputNames
        for key in Set(losses.keys).union(lossWeights.keys).union(metrics.keys) where !names.contains(key) {
            throw TrainingError.invalidArgument(name: "output", value: key, reason: "is not an output; the outputs are \(names)")
        }
        try compile(losses: names.map { losses[$0] ?? .meanSquaredError },
                    lossWeights: names.map { losses[$0] == nil ? 0 : lossWeights[$0] ?? 1 },
                    optimizer: optimizer, metrics: names.map { metrics[$0] ?? [] }, jitCompile: jitCompile)
    }

    /// Trains the model on arrays for each input and each output, in the order of ``inputs`` and ``outputs``,
    /// through the same loop as `Sequential.fit` (shuffling, validation, callbacks, history). `sampleWeight`
    /// (`[samples]`) and `classWeight` (read from the first output's targets) scale each sample's loss, as Keras' do.
    ///
    /// `truncatedBPTTSteps` and `truncatedBPTTBackwardSteps` train by truncated backpropagation through time as
    /// `Sequential.fit` does (one input `[samples, time, features]` and one output; see `Model+LongSequences.swift`),
    /// and stateful recurrent layers (`isStateful: true`) carry their state from batch to batch under the same
    /// rules as in `Sequential`: `shuffle: false` and one batch size that divides the samples.
    @discardableResult
    public func fit(_ x: [Tensor], _ y: [Tensor], epochs: Int = 1, batchSize: Int = 32, validationSplit: Float = 0,
                    validationData: (x: [Tensor], y: [Tensor])? = nil, shuffle: Bool = true, callbacks: [Callback] = [],
                    verbose: Verbosity = .progressBar, truncatedBPTTSteps: Int? = nil, truncatedBPTTBackwardSteps: Int? = nil,
                    sampleWeight: Tensor? = nil, classWeight: [Int: Float]? = nil, seed: UInt64 = 0) throws -> History {
        guard let optimizer, !losses.isEmpty else { throw TrainingError.notCompiled }
        try FitLoop.checkSettings(epochs: epochs, batchSize: batchSize, validationSplit: validationSplit)
        let targets = try validate(x, y)
        var validation: ([Tensor], [Tensor])?
        var train = (x, targets)
        if let validationData {
            validation = (validationData.x, try validate(validationData.x, validationData.y, prefix: "validation "))
        } else {
            let split = try FitLoop.split(x, targets, validationSplit: validationSplit)
            train = split.train
            validation = split.validation
        }
        let single = outputs.count == 1
        let tracked = zip(metrics.indices, zip(metrics, outputNames)).flatMap { index, pair in
            pair.0.map { FitLoop.TrackedMetric(key: single ? $0.name : "\(pair.1)_\($0.name)", output: index, metric: $0) }
        }
        let loop = FitLoop(epochs: epochs, batchSize: batchSize, shuffle: shuffle, callbacks: callbacks, verbose: verbose,
                           seed: seed, metrics: tracked)
        let isTruncated = truncatedBPTTSteps != nil
        try TruncatedBPTT.check(steps: truncatedBPTTSteps, backwardSteps: truncatedBPTTBackwardSteps)
        if isTruncated { try checkTruncation(x) }
        try checkCarriedStates(isTruncated: isTruncated)
        try checkStatefulTraining(samples: train.0[0].shape[0], batchSize: batchSize, shuffle: shuffle, isTruncated: isTruncated)
        let weights = try sampleWeights(sampleWeight, classWeight, target: targets[0], isTruncated: isTruncated)
        let truncation = truncatedBPTTSteps.map {
            truncatedBPTT(steps: $0, backwardSteps: truncatedBPTTBackwardSteps ?? $0, optimizer: optimizer)
        }
        return try loop.run(model: self, inputs: train.0, targets: train.1,
                            sampleWeights: weights?.slice(along: 0, 0..<train.0[0].shape[0]), validation: validation,
                            beforeBatch: checkCarriedBatchSize, step: { bx, by, bw in
            if let truncation { return truncation.train(bx[0], by[0]).map { ($0.loss, [$0.prediction], [$0.mask]) } }
            return trainStep(bx, by, sampleWeights: bw, optimizer: optimizer)
        }, evaluate: { try evaluate($0, $1, batchSize: batchSize) })
    }

    /// Trains a model with one input and one output.
    @discardableResult
    public func fit(_ x: Tensor, _ y: Tensor, epochs: Int = 1, batchSize: Int = 32, validationSplit: Float = 0,
                    shuffle: Bool = true, callbacks: [Callback] = [], verbose: Verbosity = .progressBar,
                    truncatedBPTTSteps: Int? = nil, truncatedBPTTBackwardSteps: Int? = nil, seed: UInt64 = 0) throws -> History {
        try fit([x], [y], epochs: epochs, batchSize: batchSize, validationSplit: validationSplit, shuffle: shuffle,
                callbacks: callbacks, verbose: verbose, truncatedBPTTSteps: truncatedBPTTSteps,
                truncatedBPTTBackwardSteps: truncatedBPTTBackwardSteps, seed: seed)
    }

    /// Runs one training step on a batch and returns its loss (Keras' `train_on_batch`); `nil`, leaving the
    /// weights unchanged, when the loss or a gradient is not finite.
    @discardableResult
    public func trainOnBatch(_ x: [Tensor], _ y: [Tensor]) throws -> Float? {
        guard let optimizer, !losses.isEmpty else { throw TrainingError.notCompiled }
        return trainStep(x, try validate(x, y), optimizer: optimizer)?.loss
    }

    /// One step: forward, the weighted sum of the outputs' losses, backward, update, replaying a compiled plan
    /// when it can (never with sample weights: a plan has no input for them).
    func trainStep(_ x: [Tensor], _ y: [Tensor], sampleWeights: Tensor? = nil,
                   optimizer: any Optimizer) -> (loss: Float, predictions: [Tensor], masks: [Tensor?])? {
        var masks = [Tensor?](repeating: nil, count: outputs.count)
        let compiling = sampleWeights == nil && canCompile()
        var (stepLosses, targets) = (losses, y)
        if compiling {
            for k in y.indices { (stepLosses[k], targets[k]) = losses[k].compiled(target: y[k], classes: outputs[k].shape.last) }
        }
        let outcome = plans.trainingStep(feeds: x + targets, compiling: compiling, model: self,
                                         tape: trainingTape, optimizer: optimizer) { nodes in
            let (predictions, outputMasks) = run(Array(nodes[..<x.count]))
            masks = outputMasks
            let total = totalLoss(predictions, Array(nodes[x.count...]), losses: stepLosses, masks: outputMasks,
                                  sampleWeights: sampleWeights)
            return (total, predictions, outputMasks.allSatisfy { $0 == nil })
        }
        return outcome.map { ($0.loss, $0.outputs, masks) }
    }

    /// `Σ lossWeights[i] · losses[i](prediction[i], target[i])` (an output of weight 0 adds nothing); an output
    /// with a mask averages its loss over the real steps only.
    func totalLoss(_ predictions: [Node], _ targets: [Node], losses: [Loss]? = nil, masks: [Tensor?],
                   sampleWeights: Tensor? = nil) -> Node {
        let losses = losses ?? self.losses
        var total: Node?
        for (index, (prediction, target)) in zip(predictions, targets).enumerated() where lossWeights[index] != 0 {
            let loss = sampleWeights.map { losses[index](prediction, target, sampleWeights: $0) }
                ?? masks[index].map { losses[index](prediction, target, mask: $0) } ?? losses[index](prediction, target)
            let term = loss * lossWeights[index]
            total = total.map { $0 + term } ?? term
        }
        return total ?? Node(Tensor(shape: [], scalars: [0]))
    }

    /// Returns the outputs for arrays of each input, computed in batches without a tape.
    public func predict(_ x: [Tensor], batchSize: Int = 32) throws -> [Tensor] {
        try predictWithMasks(x, batchSize: batchSize).outputs
    }

    /// The outputs and their masks, in batches without a tape.
    func predictWithMasks(_ x: [Tensor], batchSize: Int) throws -> (outputs: [Tensor], masks: [Tensor?]) {
        guard batchSize >= 1 else { throw TrainingError.invalidArgument(name: "batchSize", value: "\(batchSize)", reason: "must be at least 1") }
        try checkInputs(x, prefix: "")
        var batches: [(outputs: [Tensor], masks: [Tensor?])] = []
        let compiling = canCompile()
        var start = 0
        while start < x[0].shape[0] {
            let end = min(x[0].shape[0], start + batchSize)
            var masks: [Tensor?] = []
            let values = plans.inference(x.map { $0.slice(along: 0, start..<end) }, compiling: compiling, model: self) { nodes in
                let (values, outputMasks) = run(nodes)
                masks = outputMasks
                return (values, outputMasks.allSatisfy { $0 == nil })
            }
            batches.append((values, masks.isEmpty ? Array(repeating: nil, count: outputs.count) : masks))
            start = end
        }
        let joined = { (parts: [Tensor]) in parts.count == 1 ? parts[0] : Tensor.concatenate(parts, along: 0) }
        return (outputs.indices.map { k in joined(batches.map { $0.outputs[k] }) },
                outputs.indices.map { k in batches[0].masks[k] == nil ? nil : joined(batches.map { $0.masks[k]! }) })
    }

    /// Returns the output of a model with one input and one output.
    public func predict(_ x: Tensor, batchSize: Int = 32) throws -> Tensor { try predict([x], batchSize: batchSize)[0] }

    /// Returns the total loss (`"loss"`), each output's loss (`"dense_loss"`, when there are several) and the
    /// compiled metrics, without training.
    public func evaluate(_ x: [Tensor], _ y: [Tensor], batchSize: Int = 32) throws -> [String: Float] {
        guard !losses.isEmpty else { throw TrainingError.notCompiled }
        let targets = try validate(x, y)
        let (predictions, masks) = try predictWithMasks(x, batchSize: batchSize)
        let single = outputs.count == 1
        var result: [String: Float] = [:]
        var total: Float = 0
        for (index, name) in outputNames.enumerated() {
            let (prediction, target) = (Node(predictions[index]), Node(targets[index]))
            let value = (masks[index].map { losses[index](prediction, target, mask: $0) } ?? losses[index](prediction, target)).value.scalar
            total += lossWeights[index] * value
            if !single { result["\(name)_loss"] = value }
            for metric in metrics[index] {
                let (sum, count) = metric.total(predictions[index], targets[index], mask: masks[index])
                let mean = sum / Double(max(count, 1))
                result[single ? metric.name : "\(name)_\(metric.name)"] = Float(metric == .rootMeanSquaredError ? mean.squareRoot() : mean)
            }
        }
        result["loss"] = total
        return result
    }

    /// Writes every parameter to a safetensors file, named as in ``namedParameters``.
    public func saveWeights(to url: URL, metadata: [String: String] = [:]) throws {
        var tensors: [String: Tensor] = [:]
        for (name, parameter) in namedParameters { tensors[name] = parameter.value }
        try SafeTensors.write(tensors, metadata: metadata, to: url)
    }

    /// Checks the input arrays: one per input, one sample count, each input's shape, finite values, and token
    /// indices for inputs read by an `Embedding`.
    func checkInputs(_ x: [Tensor], prefix: String) throws {
        guard x.count == inputs.count else {
            throw TrainingError.invalidArgument(name: "\(prefix)x", value: "\(x.count) arrays", reason: "the model has \(inputs.count) inputs")
        }
        for (index, (array, input)) in zip(x, inputs).enumerated() {
            let name = inputs.count == 1 ? "\(prefix)x" : "\(prefix)x[\(index)]"
            try checkInput(array, shape: input.shape, name: name)
            guard array.shape[0] == x[0].shape[0] else {
                throw TrainingError.sampleCountMismatch(inputs: x[0].shape[0], targets: array.shape[0])
            }
            for call in calls where call.inputs.contains(where: { $0 === input }) {
                if let embedding = call.layer as? Embedding { try checkIndices(array, below: embedding.vocabularySize, name: name) }
            }
        }
    }

    /// Checks inputs and targets; returns the targets reshaped to the outputs' shapes.
    func validate(_ x: [Tensor], _ y: [Tensor], prefix: String = "") throws -> [Tensor] {
        try checkInputs(x, prefix: prefix)
        guard y.count == outputs.count else {
            throw TrainingError.invalidArgument(name: "\(prefix)y", value: "\(y.count) arrays", reason: "the model has \(outputs.count) outputs")
        }
        return try zip(y, outputs).enumerated().map { index, pair in
            let name = outputs.count == 1 ? "\(prefix)y" : "\(prefix)y[\(index)]"
            guard pair.0.rank >= 1, pair.0.shape[0] == x[0].shape[0] else {
                throw TrainingError.sampleCountMismatch(inputs: x[0].shape[0], targets: pair.0.shape.first ?? 0)
            }
            return try checkedTarget(pair.0, outputShape: pair.1.shape, loss: losses[index], name: name)
        }
    }
}
