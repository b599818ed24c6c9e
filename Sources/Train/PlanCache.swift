import Graph
import Layers

/// The compiled plans of a model (`Sequential` or a functional `Model`), keyed by the shapes of what each plan is
/// fed (every input, then every target for a training step) and valid only for the structure they were traced
/// from: adding a layer or compiling again empties the cache, and a plan is dropped when the model's layers,
/// parameters or their trainability differ from the trace's.
///
/// Both models train and predict through ``trainingStep(feeds:compiling:model:tape:optimizer:record:recorded:)``
/// and ``inference(_:compiling:model:run:)``: the model only says what one step records; whether it replays,
/// traces or stays eager is decided here, once.
struct PlanCache {
    /// The shapes of a plan's inputs, and whether it is a training step (else inference).
    struct Key: Hashable {
        var shapes: [[Int]]
        var isTraining: Bool
    }

    private var plans: [Key: Plan] = [:]
    /// How many plans were traced, kept or not: a step that replays adds nothing.
    private(set) var traceCount = 0
    private var signature: [ObjectIdentifier] = []
    private var trainability: [Bool] = []

    /// Forgets every plan.
    mutating func removeAll() { plans.removeAll() }

    /// The plan for `key`, if one was traced from `model`'s current structure (a stale cache is emptied).
    mutating func plan(for key: Key, model: some TrainableModel) -> Plan? {
        guard let plan = plans[key] else { return nil }
        guard matches(model) else {
            plans.removeAll()
            return nil
        }
        return plan
    }

    /// The plan for `key` if it was traced from `model`'s current structure, for inspection.
    func existingPlan(for key: Key, model: some TrainableModel) -> Plan? {
        matches(model) ? plans[key] : nil
    }

    /// Keeps `plan` for `key`.
    mutating func store(_ plan: Plan, for key: Key, model: some TrainableModel) {
        if !matches(model) {
            plans.removeAll()
            let parameters = model.parameters
            signature = model.layers.map { ObjectIdentifier($0) } + parameters.map { ObjectIdentifier($0) }
            trainability = parameters.map(\.isTrainable)
        }
        plans[key] = plan
        traceCount += 1
    }

    private func matches(_ model: some TrainableModel) -> Bool {
        let parameters = model.parameters
        return signature == model.layers.map { ObjectIdentifier($0) } + parameters.map { ObjectIdentifier($0) }
            && trainability == parameters.map(\.isTrainable)
    }

    /// One training step on `feeds` (the batch of every input, then every target): forward, loss, backward,
    /// update. Returns the loss and the values of the other recorded outputs, or `nil` (the weights unchanged)
    /// when the loss or a gradient is not finite.
    ///
    /// When `compiling`, a plan traced for these shapes is replayed; otherwise `record` runs on `tape` (cleared
    /// before and after, its storage kept), given the feeds as constants, and returns the loss, the outputs to
    /// report and whether the recording may be replayed (`false` when it froze values read from the data, such
    /// as a mask). `recorded` sees the tape after backward (tape statistics).
    mutating func trainingStep(feeds: [Tensor], compiling: Bool, model: some TrainableModel, tape: Tape,
                               optimizer: any Optimizer,
                               record: ([Node]) -> (loss: Node, outputs: [Node], isTraceable: Bool),
                               recorded: (Tape) -> Void = { _ in }) -> (loss: Float, outputs: [Tensor])? {
        let states = compiling ? CarriedStates(model: model, batchSize: feeds[0].shape[0]) : CarriedStates()
        let key = Key(shapes: (feeds + states.values).map(\.shape), isTraining: true)
        if compiling, let plan = plan(for: key, model: model) {
            let values = states.keepFinal(of: plan.replay(feeds + states.values))
            guard values[0].scalar.isFinite else {
                model.parameters.forEach { $0.zeroGradient() }
                return nil
            }
            return model.applyGradients(optimizer) ? (values[0].scalar, Array(values.dropFirst())) : nil
        }
        tape.removeAll()
        defer { tape.removeAll() }
        let inputs = feeds.map { tape.constant($0) }
        states.beginRecording()
        let (loss, outputs, isTraceable) = record(inputs)
        let traced = states.endRecording()
        guard loss.value.scalar.isFinite else { return nil }
        tape.backward(from: loss)
        recorded(tape)
        if compiling && isTraceable, let traced {
            store(Plan(tape: tape, inputs: inputs + traced.start, outputs: [loss] + outputs + traced.final, differentiating: loss),
                  for: key, model: model)
        }
        return model.applyGradients(optimizer) ? (loss.value.scalar, outputs.map(\.value)) : nil
    }

    /// The outputs for one batch of every input without training: a replayed forward plan when `compiling`,
    /// else `run` on untaped nodes. `run` says whether its recording may be replayed.
    mutating func inference(_ batch: [Tensor], compiling: Bool, model: some TrainableModel,
                            run: ([Node]) -> (outputs: [Node], isTraceable: Bool)) -> [Tensor] {
        guard compiling else { return run(batch.map { Node($0) }).outputs.map(\.value) }
        let states = CarriedStates(model: model, batchSize: batch[0].shape[0])
        let key = Key(shapes: (batch + states.values).map(\.shape), isTraining: false)
        if let plan = plan(for: key, model: model) { return states.keepFinal(of: plan.replay(batch + states.values)) }
        let tape = Tape(isTraining: false)
        let inputs = batch.map { tape.constant($0) }
        states.beginRecording()
        let (outputs, isTraceable) = run(inputs)
        let traced = states.endRecording()
        if isTraceable, let traced {
            store(Plan(tape: tape, inputs: inputs + traced.start, outputs: outputs + traced.final), for: key, model: model)
        }
        return outputs.map(\.value)
    }
}

/// The state a compiled step feeds its stateful recurrent layers and reads back: a plan traced with the
/// state as a constant would replay the first batch's state forever, so each stateful layer's start state is a
/// plan input (after the model's feeds, fed the current carried state or zeros) and its final state a plan
/// output (after the model's outputs, stored back as the carried state).
struct CarriedStates {
    private var layers: [any StatefulRecurrentLayer] = []
    /// The start state of every stateful layer, in layer order, flattened.
    private(set) var values: [Tensor] = []
    private var counts: [Int] = []

    /// No stateful layer (an eager step).
    init() {}

    /// The stateful layers of `model` and the states they start from on a batch of `batchSize` rows.
    init(model: some TrainableModel, batchSize: Int) {
        layers = model.statefulLayers
        let states = layers.map { $0.startStateValues(batchSize: batchSize) }
        values = states.flatMap { $0 }
        counts = states.map(\.count)
    }

    /// Has the layers keep what their calls record from now on.
    func beginRecording() {
        for layer in layers { layer.recordedStates = [] }
    }

    /// The start leaves and final nodes of the recorded step, or `nil` when a layer was not called exactly once
    /// from its carried state (such a step stays eager).
    func endRecording() -> (start: [Node], final: [Node])? {
        defer { for layer in layers { layer.recordedStates = nil } }
        var start: [Node] = [], final: [Node] = []
        for (layer, count) in zip(layers, counts) {
            guard let recorded = layer.recordedStates, recorded.count == 1, recorded[0].start.count == count else { return nil }
            start += recorded[0].start
            final += recorded[0].final
        }
        return (start, final)
    }

    /// Stores the final states at the end of a replay's `values` as the layers' carried states and returns the
    /// values before them.
    func keepFinal(of values: [Tensor]) -> [Tensor] {
        var end = values.count - self.values.count
        let kept = Array(values[..<end])
        for (layer, count) in zip(layers, counts) {
            layer.carriedState = Array(values[end..<(end + count)])
            end += count
        }
        return kept
    }
}

extension TrainableModel {
    /// Whether steps can run compiled: ``jitCompile`` is on and every layer's recording depends on shapes only
    /// (``Layer/supportsCompilation``), a stateful recurrent layer's once its state is fed (``CarriedStates``).
    func canCompile() -> Bool {
        jitCompile && layers.allSatisfy { layer in
            layer.supportsCompilation || (layer as? any StatefulRecurrentLayer).map { $0.isStateful && $0.compilesWithFedState } == true
        }
    }
}

extension Loss {
    /// The loss a compiled step records and the target it is fed. The sparse loss records its targets' one-hot
    /// as a constant, which a plan would freeze; a compiled step is fed that one-hot as an input instead and
    /// records the categorical cross-entropy on it, the same operations on the same values.
    func compiled(target: Tensor, classes: @autoclosure () -> Int?) -> (loss: Loss, target: Tensor) {
        guard case .sparseCategoricalCrossEntropy = self, let classes = classes() else { return (self, target) }
        return (compiledLoss(classes: classes), target.oneHot(classes: classes))
    }

    /// The loss a compiled step records for targets fed as by ``compiled(target:classes:)``.
    func compiledLoss(classes: Int?) -> Loss {
        guard case .sparseCategoricalCrossEntropy(let fromLogits) = self, classes != nil else { return self }
        return .categoricalCrossEntropy(fromLogits: fromLogits)
    }

    /// The shape a compiled step is fed for targets of `shape`: with the class axis for sparse targets.
    func compiledTargetShape(_ shape: [Int], classes: Int?) -> [Int] {
        guard case .sparseCategoricalCrossEntropy = self, let classes else { return shape }
        return shape + [classes]
    }
}

extension Sequential {
    /// How many plans (training steps and inference) this model has traced: a step replaying a plan adds none,
    /// so the count shows how often compiling happened, e.g. once per window length in truncated BPTT.
    public var tracedPlanCount: Int { plans.traceCount }

    /// The compiled training step for inputs of `shape` and targets of `targetShape` (sparse targets without
    /// their class axis, as given to `fit`), if one has been traced from the model's current structure.
    public func compiledTrainingPlan(inputShape shape: [Int], targetShape: [Int]) -> Plan? {
        let fed = loss?.compiledTargetShape(targetShape, classes: outputShape?.last) ?? targetShape
        return plans.existingPlan(for: PlanCache.Key(shapes: [shape, fed], isTraining: true), model: self)
    }

    /// The model's output for one batch and its mask, without training: a replayed forward plan when
    /// compiling, else untaped.
    func infer(_ batch: Tensor) -> (output: Tensor, mask: Tensor?) {
        var mask: Tensor?
        let output = plans.inference([batch], compiling: canCompile(), model: self) { inputs in
            let (output, outputMask) = run(inputs[0])
            mask = outputMask
            return ([output], outputMask == nil)
        }[0]
        return (output, mask)
    }
}

extension Model {
    /// How many plans (training steps and inference) this model has traced: a step replaying a plan adds none.
    public var tracedPlanCount: Int { plans.traceCount }

    /// The compiled training step for batches of these input and target shapes (with the batch axis, in the
    /// order of ``inputs`` and ``outputs``), if one has been traced from the model's current structure.
    public func compiledTrainingPlan(inputShapes: [[Int]], targetShapes: [[Int]]) -> Plan? {
        let fed = targetShapes.enumerated().map { k, shape in
            k < losses.count ? losses[k].compiledTargetShape(shape, classes: outputs[k].shape.last) : shape
        }
        return plans.existingPlan(for: PlanCache.Key(shapes: inputShapes + fed, isTraining: true), model: self)
    }
}
