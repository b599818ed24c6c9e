import Graph
import Layers
import Serialization

/// The layer graph between a model's inputs and outputs, ordered and named as Keras orders and names it.
///
/// Keras' `map_graph`: a depth-first walk back from the outputs (stopping at the model's inputs) lists
/// the calls children first and numbers layers in the order it meets them; a call's depth is one more
/// than the deepest call reading it (outputs are at 0), a layer's the deepest of its calls; layers are
/// listed deepest first, ties in meeting order. That is the row order of Keras' summary.
struct LayerGraph {
    /// Calls, each after the calls it reads from.
    let calls: [LayerCall]
    /// Distinct layers in Keras' order.
    let layers: [any Layer]
    /// Keras-style names of `layers`.
    let names: [String]

    init(inputs: [SymbolicTensor], outputs: [SymbolicTensor]) throws {
        let stopAt = Set(inputs.map(TensorKey.init))
        var finished = Set<ObjectIdentifier>(), inProgress = Set<ObjectIdentifier>()
        var postOrder: [LayerCall] = []
        var layerIndex: [ObjectIdentifier: Int] = [:]
        var layersMet: [any Layer] = []
        // An explicit stack (call, next input to visit) instead of recursion.
        for output in outputs {
            var stack: [(LayerCall, Int)] = []
            func enter(_ tensor: SymbolicTensor) throws {
                let call = tensor.call, id = ObjectIdentifier(call)
                if finished.contains(id) { return }
                if inProgress.contains(id) { throw ModelError.cycle(layer: call.layer.typeName) }
                if layerIndex[ObjectIdentifier(call.layer)] == nil {
                    layerIndex[ObjectIdentifier(call.layer)] = layersMet.count
                    layersMet.append(call.layer)
                }
                inProgress.insert(id)
                stack.append((call, stopAt.contains(TensorKey(tensor)) ? call.inputs.count : 0))
            }
            try enter(output)
            while let (call, next) = stack.last {
                if next < call.inputs.count {
                    stack[stack.count - 1].1 += 1
                    try enter(call.inputs[next])
                } else {
                    stack.removeLast()
                    inProgress.remove(ObjectIdentifier(call))
                    finished.insert(ObjectIdentifier(call))
                    postOrder.append(call)
                }
            }
        }
        var callDepth: [ObjectIdentifier: Int] = [:], layerDepth: [ObjectIdentifier: Int] = [:]
        for call in postOrder.reversed() {
            let layer = ObjectIdentifier(call.layer)
            let depth = max(callDepth[ObjectIdentifier(call), default: 0], layerDepth[layer, default: 0])
            layerDepth[layer] = depth
            callDepth[ObjectIdentifier(call)] = depth
            for input in call.inputs {
                let parent = ObjectIdentifier(input.call)
                callDepth[parent] = max(depth + 1, callDepth[parent, default: 0])
            }
        }
        let ordered = layersMet.sorted {
            let (a, b) = (ObjectIdentifier($0), ObjectIdentifier($1))
            return layerDepth[a]! != layerDepth[b]! ? layerDepth[a]! > layerDepth[b]! : layerIndex[a]! < layerIndex[b]!
        }
        // Keras numbers names in creation order; a layer's first call stands for its creation.
        let firstCall = Dictionary(postOrder.map { (ObjectIdentifier($0.layer), $0.creationIndex) }, uniquingKeysWith: min)
        let byCreation = ordered.sorted { firstCall[ObjectIdentifier($0)]! < firstCall[ObjectIdentifier($1)]! }
        let creationNames = Dictionary(uniqueKeysWithValues: zip(byCreation.map(ObjectIdentifier.init), LayerNames.names(of: byCreation)))
        calls = postOrder
        layers = ordered
        names = ordered.map { creationNames[ObjectIdentifier($0)]! }
    }

    func name(of layer: any Layer) -> String {
        let index = layers.firstIndex { $0 === layer }!
        return "\(names[index]) (\(layer.typeName))"
    }

    /// Throws the first wiring problem: a tensor in `inputs` not made by `Input`, a failed call, an input
    /// reached that is not listed, a listed input no output reaches.
    func check(inputs: [SymbolicTensor], outputs: [SymbolicTensor]) throws {
        for input in inputs where !input.isInput {
            throw ModelError.notAnInput(tensor: "the output of \(name(of: input.call.layer))")
        }
        let listed = Set(inputs.map(TensorKey.init))
        for call in calls {
            if let problem = call.problem, !(problem is UpstreamFailure) {
                let layer = name(of: call.layer)
                if let setting = problem as? SettingError {
                    throw ModelError.invalidSetting(layer: layer, setting: setting.setting, value: setting.value,
                                                    requirement: setting.requirement)
                }
                let reason = (problem as? ShapeError)?.message ?? "\(problem)"
                let sources = call.inputs.map { "\(name(of: $0.call.layer)) \(Sequential.format($0.shape))" }
                throw ModelError.incompatibleLayers(layer: layer, inputs: sources, reason: reason)
            }
            if call.layer is InputLayer, !listed.contains(TensorKey(call, 0)) {
                let reader = calls.first { $0.inputs.contains { $0.call === call } }.map { name(of: $0.layer) } ?? "an output"
                throw ModelError.missingInput(input: name(of: call.layer), shape: call.outputShapes[0], neededBy: reader)
            }
        }
        let reached = Set(calls.map(ObjectIdentifier.init))
        for input in inputs where !reached.contains(ObjectIdentifier(input.call)) {
            throw ModelError.disconnectedInput(input: "input \(inputs.firstIndex { $0 === input }!)", shape: input.shape)
        }
    }
}
