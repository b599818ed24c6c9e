import Foundation
import Graph
import Layers
import Serialization

// A functional model's directory. The format lives in Serialization (FunctionalArchive.swift), which works on
// the layer graph; this file keeps the public API on `Model` and checks a loaded graph with the model's own
// construction.

extension Model {
    /// Saves the model, its layer graph and weights, to a directory (created if needed) that ``load(from:)`` reads
    /// back into a model with bit-identical predictions and the same summary.
    ///
    /// The directory is written and replaced as a whole, as by ``Sequential/save(to:)``: after a crash at any moment
    /// it holds exactly the old model or exactly the new one. It holds `manifest.json`, `model.safetensors` (every
    /// parameter named as in ``namedParameters``, a shared layer's once) and `model.json`, for example
    /// ```json
    /// { "format": "unroll.functional", "formatVersion": 1, "name": "seq2seq",
    ///   "layers": [
    ///     { "name": "input_layer", "type": "input", "shape": [7, 12] },
    ///     { "name": "input_layer_1", "type": "input", "shape": [4, 12] },
    ///     { "name": "lstm", "type": "rnn", "cell": { "kind": "lstm", "hiddenSize": 16, "unitForgetBias": true },
    ///       "returnSequences": false, "goBackwards": false, "isStateful": false },
    ///     { "name": "lstm_1", "type": "rnn", ... "returnSequences": true, ... },
    ///     { "name": "dense", "type": "dense", "outputSize": 12, "activation": "softmax", "usesBias": true } ],
    ///   "calls": [
    ///     { "layer": "input_layer", "outputCount": 1 },
    ///     { "layer": "input_layer_1", "outputCount": 1 },
    ///     { "layer": "lstm", "inputs": [{ "call": 0, "output": 0 }], "outputCount": 3 },
    ///     { "layer": "lstm_1", "inputs": [{ "call": 1, "output": 0 }, { "call": 2, "output": 1 },
    ///                                     { "call": 2, "output": 2 }], "outputCount": 3 },
    ///     { "layer": "dense", "inputs": [{ "call": 3, "output": 0 }], "outputCount": 1 } ],
    ///   "inputs": [{ "call": 0, "output": 0 }, { "call": 1, "output": 0 }],
    ///   "outputs": [{ "call": 4, "output": 0 }],
    ///   "losses": ["categorical_crossentropy"], "weightsCRC32": "1c291ca3" }
    /// ```
    /// Layers carry their name and the fields of a Sequential model's layer (see ``Sequential/save(to:)``), or
    /// `"type": "input"` with a `shape`. Calls are listed in the order they were made, each reading tensors of
    /// earlier calls by `call` index and `output` index; a shared layer has several calls. A recurrent layer's call
    /// with `outputCount` above 1 returns its final state, and its inputs after the first are its initial state.
    /// Neither the optimizer's state nor a stateful layer's carried state is saved; a loaded model is not compiled.
    ///
    /// - Throws: ``ModelArchiveError/unsavableLayer(name:typeName:reason:)`` for a layer the format cannot describe
    ///   (a `Lambda`, a custom layer or cell, an `Embedding` that does not read a model input), ``AtomicWriteError`` when a file cannot be written.
    public func save(to directory: URL) throws {
        try save(to: directory, additionalFiles: [])
    }

    /// ``save(to:)`` with a tool's files saved in the same atomic step, the way the directory is swapped in, and a
    /// hook run once the new directory is complete, before the swap.
    package func save(to directory: URL, additionalFiles: [(name: String, data: Data)] = [],
                      swap: DirectorySwap = .exchangeIfAvailable, beforeSwap: (URL) throws -> Void = { _ in }) throws {
        var tensors: [String: Tensor] = [:]
        for (name, parameter) in namedParameters { tensors[name] = parameter.value }
        let graph = ModelDirectory.SavedGraph(name: name, layers: Array(zip(layerNames, layers)), calls: calls,
                                              inputs: inputs, outputs: outputs)
        try ModelDirectory.write(graph, weights: tensors, losses: losses.isEmpty ? nil : losses.map(\.name),
                                 additionalFiles: additionalFiles, to: directory, swap: swap, beforeSwap: beforeSwap)
    }

    /// Loads a model saved by ``save(to:)``: replays its layer calls from `model.json` and sets the weights from
    /// `model.safetensors`. The model is not compiled.
    ///
    /// Every number and reference in `model.json` is checked, each layer's parameter count is checked against the
    /// weights file before the layer is created, and the graph is then checked as ``init(inputs:outputs:name:)``
    /// checks it; hostile files make it throw, never crash.
    ///
    /// - Throws: ``ModelArchiveError`` (a missing file; an invalid, newer or unknown description, naming the field;
    ///   wiring that does not fit, with the ``ModelError`` construction would throw; weights from another save),
    ///   ``SafeTensorsError`` (a truncated or corrupted weights file) or ``WeightError`` (a tensor missing or of the
    ///   wrong shape, named).
    public static func load(from directory: URL) throws -> Model {
        try load(from: directory, additionalFiles: []).model
    }

    /// ``load(from:)`` that also returns the tool files named in `additionalFiles`, read from the same save and
    /// checked against its manifest.
    package static func load(from directory: URL, additionalFiles: [String]) throws -> (model: Model, files: [String: Data]) {
        let (contents, files) = try ModelDirectory.readFunctional(from: directory, additionalFiles: additionalFiles)
        let graph = contents.graph
        func invalid(_ reason: String) -> ModelArchiveError {
            ModelArchiveError.invalidDescription(file: contents.descriptionPath, reason: reason)
        }
        let model: Model
        do {
            model = try Model(inputs: graph.inputs, outputs: graph.outputs, name: graph.name)
        } catch let error as ModelError {
            throw invalid(error.description)
        }
        let kept = Set(model.calls.map(ObjectIdentifier.init))
        if let unused = graph.calls.firstIndex(where: { !kept.contains(ObjectIdentifier($0)) }) {
            throw invalid("calls[\(unused)]: no output needs this call of '\(graph.layers.first { $0.layer === graph.calls[unused].layer }?.name ?? "?")'")
        }
        // Weights are keyed by layer names, which the model derives from the order of the calls; a file whose names
        // differ (edited by hand) would otherwise put weights into the wrong layers.
        for (index, (name, layer)) in graph.layers.enumerated() {
            guard let position = model.layers.firstIndex(where: { $0 === layer }) else {
                throw invalid("layers[\(index)]: no output needs layer '\(name)'")
            }
            guard model.layerNames[position] == name else {
                throw invalid("layers[\(index)].name: '\(name)' is named '\(model.layerNames[position])' by the model, "
                              + "which numbers layers in the order of their first call")
            }
        }
        try model.setWeights(named: contents.weights, source: contents.weightsPath)
        return (model, files)
    }
}
