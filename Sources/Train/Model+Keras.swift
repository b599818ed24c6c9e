import Foundation
import Graph
import Layers
import Serialization

extension Model {
    /// Loads a Keras 3 functional model (`keras.Model(inputs, outputs)` saved as `.keras`) with its weights.
    ///
    /// ```swift
    /// let model = try Model.load(keras: URL(fileURLWithPath: "two_inputs.keras"))
    /// let prediction = try model.predict([series, extra])
    /// ```
    /// Layers: `InputLayer`, `LSTM`, `GRU`, `SimpleRNN`, `Bidirectional`, `Dense`, `Embedding`, `Dropout`,
    /// `Concatenate`, `Add`, `Multiply`, each with the options ``Sequential/load(keras:compile:)`` accepts; a layer
    /// called several times shares its weights. With `compile` and a recorded training configuration of one loss,
    /// the model is compiled as in Keras.
    ///
    /// - Throws: ``KerasError`` naming an unsupported layer, option or wiring (tensors passed by keyword, such as an
    ///   LSTM's `initial_state`), ``ModelError`` for wiring that does not fit, ``ZipError``, ``HDF5Error``.
    public static func load(keras url: URL, compile: Bool = true) throws -> Model {
        let contents = try KerasFile.readFunctional(bytes: try KerasFile.readBytes(url), source: url.path)
        let file = "\(url.path)/config.json"
        var produced: [String: [[SymbolicTensor]]] = [:]
        var layers: [(any Layer)?] = Array(repeating: nil, count: contents.layers.count)
        func tensor(_ reference: KerasFile.TensorReference) -> SymbolicTensor? {
            guard let nodes = produced[reference.layer], reference.node < nodes.count,
                  reference.index < nodes[reference.node].count else { return nil }
            return nodes[reference.node][reference.index]
        }
        // Keras lists layers in an order where each call's inputs come first, except that a shared layer's later
        // calls may read layers listed after it: passes repeat until every call is wired.
        var pending = contents.layers.indices.map { ($0, 0) }
        var allocated = 0
        while !pending.isEmpty {
            var next: [(Int, Int)] = []
            for (index, call) in pending {
                let entry = contents.layers[index]
                if let shape = entry.inputShape {
                    let input = Input(shape: shape)
                    produced[entry.name] = [[input]]
                    layers[index] = input.call.layer
                    continue
                }
                guard let layer = entry.layer else { continue }
                layers[index] = layer
                guard call < entry.calls.count else { continue }
                let inputs = entry.calls[call].compactMap(tensor)
                guard inputs.count == entry.calls[call].count else {
                    next.append((index, call))
                    continue
                }
                let output: SymbolicTensor
                if let merge = layer as? any MergeLayer {
                    output = merge(inputs)
                } else {
                    guard inputs.count == 1 else {
                        throw KerasError.invalidConfiguration(file: file, reason: "layer '\(entry.name)' is called on "
                                                              + "\(inputs.count) tensors; it takes one")
                    }
                    // Building allocates: the wired input's shape must keep the model within the weights file's size.
                    if call == 0 {
                        guard let count = entry.parameterScalarCount(inputs[0].shape),
                              count <= contents.parameterBudget - allocated else {
                            throw KerasError.invalidConfiguration(
                                file: file, reason: "layer '\(entry.name)' on \(inputs[0].shape) needs more parameters than "
                                    + "the weights file can hold")
                        }
                        allocated += count
                    }
                    output = layer(inputs[0])
                }
                produced[entry.name, default: []].append([output])
                if call + 1 < entry.calls.count { next.append((index, call + 1)) }
            }
            guard next.count < pending.count || next.isEmpty else {
                let names = next.map { contents.layers[$0.0].name }
                throw KerasError.invalidConfiguration(file: file, reason: "the calls of \(names) read tensors no layer makes")
            }
            pending = next
        }
        func resolve(_ references: [KerasFile.TensorReference], _ role: String) throws -> [SymbolicTensor] {
            try references.map { reference in
                guard let found = tensor(reference) else {
                    throw KerasError.invalidConfiguration(file: file, reason: "the \(role) \(reference.layer) is not made by any layer")
                }
                return found
            }
        }
        let model = try Model(inputs: try resolve(contents.inputs, "input"), outputs: try resolve(contents.outputs, "output"),
                              name: contents.name)
        try KerasFile.loadFunctionalWeights(contents, into: layers.compactMap { $0 })
        if compile, let lossName = contents.loss {
            try model.compile(loss: try Sequential.kerasLoss(lossName, file: file),
                              optimizer: contents.optimizer.map(Sequential.makeOptimizer) ?? Adam())
        }
        return model
    }
}
