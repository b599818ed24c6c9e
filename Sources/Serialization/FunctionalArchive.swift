import Foundation
import Graph
import Layers

// A functional model's `model.json`: its layers (each configuration read and written as a Sequential model's),
// every call of them (a shared layer is one layer with several calls), and which tensors are the model's inputs
// and outputs. Rebuilding replays the calls in the order they were made, so layers are created, built and named
// as in the saved model; the wiring itself is then checked by the model's own construction.

/// The contents of a functional model's `model.json`.
struct FunctionalDescription: Equatable {
    /// The value of the `format` field of a functional model's description.
    static let format = "unroll.functional"
    /// The version this build writes and reads.
    static let formatVersion = 1
    /// The most calls a description may hold (a shared layer is called several times).
    static let maximumCallCount = 1 << 16
    /// The most tensors one call may make (a recurrent layer's output and state).
    static let maximumOutputCount = 16

    /// What a layer is: a model input (`Input(shape:)`) or a layer with a configuration.
    enum Kind: Equatable {
        case input(shape: [Int])
        case layer(LayerConfiguration)
    }

    /// A tensor: output `output` of call `call` (an index into ``calls``).
    struct TensorReference: Equatable {
        var call: Int
        var output: Int
    }

    /// One call of a layer: which layer (an index into ``layers``), the tensors it reads, how many it makes.
    struct Call: Equatable {
        var layer: Int
        var inputs: [TensorReference]
        var outputCount: Int
    }

    var name: String
    var layers: [(name: String, kind: Kind)]
    /// In the order they were made, so each call reads only tensors of earlier calls.
    var calls: [Call]
    var inputs: [TensorReference]
    var outputs: [TensorReference]
    /// The compiled losses' names, for the reader only: a loaded model is not compiled.
    var losses: [String]?
    var weightsCRC32: String?

    static func == (lhs: FunctionalDescription, rhs: FunctionalDescription) -> Bool {
        lhs.name == rhs.name && lhs.layers.map(\.name) == rhs.layers.map(\.name)
            && lhs.layers.map(\.kind) == rhs.layers.map(\.kind) && lhs.calls == rhs.calls && lhs.inputs == rhs.inputs
            && lhs.outputs == rhs.outputs && lhs.losses == rhs.losses && lhs.weightsCRC32 == rhs.weightsCRC32
    }
}

extension FunctionalDescription {
    /// Checks the description `data`, read from `url`.
    static func read(data: Data, path url: URL) throws -> FunctionalDescription {
        try readDescription(data, path: url) { root in
            try checkHeader(root, format: format, version: formatVersion, file: url.path)
            return try FunctionalDescription(json: root)
        }
    }

    /// Reads the fields below the header, checking every reference.
    init(json root: JSONField) throws {
        name = try root.field("name").string()
        let layerList = try root.field("layers")
        layers = []
        var layerIndex: [String: Int] = [:]
        for entry in try layerList.elements() {
            let nameField = try entry.field("name")
            let name = try nameField.string()
            guard layerIndex[name] == nil else { throw InvalidFieldError(nameField, "'\(name)' names two layers") }
            layerIndex[name] = layers.count
            let isInput = try entry.field("type").string() == "input"
            layers.append((name, isInput ? .input(shape: try entry.field("shape").shape()) : .layer(try LayerConfiguration(json: entry))))
        }
        guard (1...ArchiveLimits.maximumLayerCount).contains(layers.count) else {
            throw InvalidFieldError(layerList, "a model needs 1...\(ArchiveLimits.maximumLayerCount) layers, got \(layers.count)")
        }

        let callList = try root.field("calls")
        var read: [Call] = []
        var callCounts = [Int](repeating: 0, count: layers.count)
        for entry in try callList.elements() {
            guard read.count < Self.maximumCallCount else {
                throw InvalidFieldError(callList, "more than \(Self.maximumCallCount) calls")
            }
            let layerField = try entry.field("layer")
            let layerName = try layerField.string()
            guard let layer = layerIndex[layerName] else { throw InvalidFieldError(layerField, "no layer is named '\(layerName)'") }
            let inputs = try (entry.optionalField("inputs")?.elements() ?? []).map { try Self.reference($0, calls: read) }
            let outputCount = try entry.field("outputCount").int(in: 1...Self.maximumOutputCount)
            if case .input = layers[layer].kind, !inputs.isEmpty || outputCount != 1 || callCounts[layer] > 0 {
                throw InvalidFieldError(entry, "an input layer ('\(layerName)') is called once, on nothing, and makes one tensor")
            }
            callCounts[layer] += 1
            read.append(Call(layer: layer, inputs: inputs, outputCount: outputCount))
        }
        if let unused = callCounts.firstIndex(of: 0) {
            throw InvalidFieldError(callList, "layer '\(layers[unused].name)' is never called")
        }
        calls = read
        inputs = try root.field("inputs").elements().map { try Self.reference($0, calls: read) }
        outputs = try root.field("outputs").elements().map { try Self.reference($0, calls: read) }
        losses = try root.optionalField("losses")?.elements().map { try $0.string() }
        weightsCRC32 = try root.optionalField("weightsCRC32")?.string()
    }

    /// Reads `{"call": 2, "output": 0}`, which must name a tensor of a call already read: a call reads only
    /// tensors made before it, so a description cannot hold a cycle.
    private static func reference(_ field: JSONField, calls: [Call]) throws -> TensorReference {
        let callField = try field.field("call"), outputField = try field.field("output")
        let call = try callField.int()
        guard (0..<calls.count).contains(call) else {
            throw InvalidFieldError(callField, "\(call) is not a call made before this point (0..<\(calls.count)); "
                                    + "a call reads only tensors of earlier calls")
        }
        let output = try outputField.int()
        guard (0..<calls[call].outputCount).contains(output) else {
            throw InvalidFieldError(outputField, "call \(call) makes \(calls[call].outputCount) tensors; \(output) is not one of them")
        }
        return TensorReference(call: call, output: output)
    }

    /// The description as JSON.
    var json: JSON {
        func reference(_ tensor: TensorReference) -> JSON {
            .object(JSONObject(["call": jsonNumber(tensor.call), "output": jsonNumber(tensor.output)]))
        }
        let layerObjects = layers.map { name, kind -> JSON in
            var object = JSONObject(["name": .string(name)])
            switch kind {
            case .input(let shape):
                object["type"] = .string("input")
                object["shape"] = .array(shape.map(jsonNumber))
            case .layer(let configuration):
                guard case .object(let fields) = configuration.json else { break }
                for member in fields.members { object[member.key] = member.value }
            }
            return .object(object)
        }
        let callObjects = calls.map { call -> JSON in
            var object = JSONObject(["layer": .string(layers[call.layer].name)])
            if !call.inputs.isEmpty { object["inputs"] = .array(call.inputs.map(reference)) }
            object["outputCount"] = jsonNumber(call.outputCount)
            return .object(object)
        }
        var object = JSONObject(["format": .string(Self.format), "formatVersion": jsonNumber(Self.formatVersion),
                                 "name": .string(name), "layers": .array(layerObjects), "calls": .array(callObjects),
                                 "inputs": .array(inputs.map(reference)), "outputs": .array(outputs.map(reference))])
        object["losses"] = losses.map { .array($0.map(JSON.string)) }
        object["weightsCRC32"] = weightsCRC32.map(JSON.string)
        return .object(object)
    }
}

/// A layer whose call can return its final state and start from a given one (``RNN``).
protocol StateReturningLayer: Layer {
    func callReturningState(_ input: SymbolicTensor, initialState: [SymbolicTensor]?)
        -> (output: SymbolicTensor, state: [SymbolicTensor])
}

extension RNN: StateReturningLayer {}

extension LayerConfiguration {
    /// Whether the layer looks up token indices (an `Embedding`, alone or applied at every time step).
    var readsTokens: Bool {
        switch self {
        case .embedding: true
        case .timeDistributed(let layer): layer.readsTokens
        default: false
        }
    }
}

extension ModelDirectory {
    /// A functional model as the archive sees it: its layer graph, without the model class that holds it.
    package struct SavedGraph {
        /// The model's name.
        package var name: String
        /// Every layer once, in the model's order, and its name (input layers included).
        package var layers: [(name: String, layer: any Layer)]
        /// Every call of the model (any order).
        package var calls: [LayerCall]
        /// The model's inputs and outputs.
        package var inputs: [SymbolicTensor]
        package var outputs: [SymbolicTensor]

        /// Creates a graph.
        package init(name: String, layers: [(name: String, layer: any Layer)], calls: [LayerCall],
                     inputs: [SymbolicTensor], outputs: [SymbolicTensor]) {
            self.name = name
            self.layers = layers
            self.calls = calls
            self.inputs = inputs
            self.outputs = outputs
        }
    }

    /// Writes a functional model's directory, replacing any previous one atomically as a whole, as
    /// ``write(name:inputShape:layers:weights:loss:additionalFiles:to:swap:beforeSwap:)`` does for a Sequential one.
    ///
    /// - Throws: ``ModelArchiveError/unsavableLayer(name:typeName:reason:)`` for a layer the format cannot describe,
    ///   ``AtomicWriteError`` when the directory cannot be written or the destination is not a model directory.
    package static func write(_ graph: SavedGraph, weights: [String: Tensor], losses: [String]?,
                              additionalFiles: [(name: String, data: Data)] = [], to directory: URL,
                              swap: DirectorySwap = .exchangeIfAvailable, beforeSwap: (URL) throws -> Void) throws {
        let layers = try graph.layers.map { name, layer -> (name: String, kind: FunctionalDescription.Kind) in
            if let input = layer as? InputLayer { return (name, .input(shape: input.shape)) }
            guard let archivable = layer as? any ArchivableLayer,
                  let configuration = try? archivable.archivedConfiguration() else {
                throw ModelArchiveError.unsavableLayer(name: name, typeName: layer.typeName, reason: "the model format "
                                                       + "describes the built-in layers, not closures (Lambda) or custom layers and cells")
            }
            for call in graph.calls where call.layer === layer && configuration.readsTokens && !(call.inputs.first?.isInput ?? true) {
                throw ModelArchiveError.unsavableLayer(name: name, typeName: layer.typeName, reason: Self.tokenRule)
            }
            return (name, .layer(configuration))
        }
        // Calls in the order they were made: rebuilding them in this order gives the layers the same names.
        let calls = graph.calls.sorted { $0.creationIndex < $1.creationIndex }
        let callIndex = Dictionary(uniqueKeysWithValues: calls.enumerated().map { (ObjectIdentifier($1), $0) })
        func reference(_ tensor: SymbolicTensor) -> FunctionalDescription.TensorReference {
            FunctionalDescription.TensorReference(call: callIndex[ObjectIdentifier(tensor.call)]!, output: tensor.outputIndex)
        }
        let described = calls.map { call in
            FunctionalDescription.Call(layer: graph.layers.firstIndex { $0.layer === call.layer }!,
                                       inputs: call.inputs.map(reference), outputCount: call.outputShapes.count)
        }
        try write(weights: weights, additionalFiles: additionalFiles, to: directory, swap: swap, beforeSwap: beforeSwap) {
            let description = FunctionalDescription(name: graph.name, layers: layers, calls: described,
                                                    inputs: graph.inputs.map(reference), outputs: graph.outputs.map(reference),
                                                    losses: losses, weightsCRC32: $0)
            return try encodedDescription(description.json, file: $1) { try FunctionalDescription(json: $0) == description }
        }
    }

    /// What a functional model's directory holds: the layer graph called again (layers built, weights not yet set)
    /// and the weights by name.
    package struct FunctionalContents {
        /// The graph; its layers are listed in the file's order with their saved names.
        package var graph: SavedGraph
        /// Every tensor of the weights file, by name.
        package var weights: [String: Tensor]
        /// The path of `model.json`, for errors about the architecture.
        package var descriptionPath: String
        /// The path of `model.safetensors`, for errors about the weights.
        package var weightsPath: String
    }

    /// Reads a functional model's directory and the tool files named in `additionalFiles`, all from the same save,
    /// and replays its calls.
    ///
    /// Every number and reference in `model.json` is checked, and each layer's parameter count is checked against
    /// the weights file before the layer is created; hostile files make it throw, never crash. Whether the calls fit
    /// together is left to the model's construction, which names the layers and shapes.
    ///
    /// - Throws: ``ModelArchiveError`` or ``SafeTensorsError``, as for a Sequential model.
    package static func readFunctional(from directory: URL, additionalFiles: [String] = []) throws
        -> (contents: FunctionalContents, files: [String: Data]) {
        let (description, tensors, files, descriptionURL, weightsURL) = try read(
            from: directory, additionalFiles: additionalFiles, parse: FunctionalDescription.read, weightsCRC32: \.weightsCRC32)
        let budget = max(tensors.values.reduce(0) { $0 + $1.count }, ArchiveLimits.scalarAllowance)
        var allocated = 0
        var layers: [(any Layer)?] = Array(repeating: nil, count: description.layers.count)
        var made: [[SymbolicTensor]] = []
        func invalid(_ reason: String) -> ModelArchiveError {
            ModelArchiveError.invalidDescription(file: descriptionURL.path, reason: reason)
        }
        for (index, call) in description.calls.enumerated() {
            let (name, kind) = description.layers[call.layer]
            let inputs = call.inputs.map { made[$0.call][$0.output] }
            let outputs: [SymbolicTensor]
            switch kind {
            case .input(let shape):
                outputs = [Input(shape: shape)]
                layers[call.layer] = outputs[0].call.layer
            case .layer(let configuration):
                if layers[call.layer] == nil {
                    // Building allocates: the layer's parameters for this input shape must fit the weights file.
                    let count = configuration.parameterScalarCount(inputShape: inputs.first?.shape ?? []).count
                    guard let count, count <= budget - allocated else {
                        throw invalid("calls[\(index)]: layer '\(name)' needs more parameter scalars than "
                                      + "\(weightsFileName) holds (\(budget - allocated) left)")
                    }
                    allocated += count
                    layers[call.layer] = try configuration.makeLayer()
                }
                if configuration.readsTokens, let source = call.inputs.first,
                   case .layer = description.layers[description.calls[source.call].layer].kind {
                    throw invalid("calls[\(index)].inputs[0]: layer '\(name)': \(tokenRule)")
                }
                let layer = layers[call.layer]!
                if let merge = layer as? any MergeLayer {
                    outputs = [merge(inputs)]
                } else if call.outputCount > 1 || inputs.count > 1 {
                    guard let recurrent = layer as? any StateReturningLayer, let first = inputs.first else {
                        throw invalid("calls[\(index)]: layer '\(name)' (\(layer.typeName)) takes one tensor and makes one")
                    }
                    let (output, state) = recurrent.callReturningState(first, initialState: inputs.count > 1 ? Array(inputs.dropFirst()) : nil)
                    outputs = [output] + state
                } else {
                    guard let input = inputs.first else { throw invalid("calls[\(index)].inputs: layer '\(name)' needs a tensor") }
                    outputs = [layer(input)]
                }
            }
            guard outputs.count == call.outputCount else {
                throw invalid("calls[\(index)].outputCount: layer '\(name)' makes \(outputs.count) tensors, not \(call.outputCount)")
            }
            made.append(outputs)
        }
        let graph = SavedGraph(name: description.name, layers: zip(description.layers, layers).map { ($0.name, $1!) },
                               calls: made.map { $0[0].call },
                               inputs: description.inputs.map { made[$0.call][$0.output] },
                               outputs: description.outputs.map { made[$0.call][$0.output] })
        return (FunctionalContents(graph: graph, weights: tensors, descriptionPath: descriptionURL.path,
                                   weightsPath: weightsURL.path), files)
    }

    /// Why a layer that looks up token indices must read a model input: `predict` checks the indices of model inputs
    /// only, and a lookup of anything else (a Dense layer's output) would stop the process.
    static let tokenRule = "an Embedding reads token indices from a model input, which predict checks"

    /// The kind of model a directory holds, read from the `format` of its `model.json` (nothing else is checked).
    package enum Kind: Sendable {
        case sequential, functional
    }

    /// Returns the kind of model saved in `directory`.
    ///
    /// - Throws: ``ModelArchiveError`` when `model.json` is missing, unreadable or of no known format.
    package static func kind(of directory: URL) throws -> Kind {
        let url = resolvedModelDirectory(directory).appendingPathComponent(descriptionFileName)
        let data = try readModelFile(url, limit: 64 << 20)
        return try readDescription(data, path: url) { root in
            switch try root.optionalField("format")?.value {
            case .string(FunctionalDescription.format)?: return .functional
            case .string(ModelDescription.format)?: return .sequential
            default:
                throw ModelArchiveError.invalidDescription(
                    file: url.path, reason: "not an Unroll model description: format is neither '\(ModelDescription.format)' "
                        + "nor '\(FunctionalDescription.format)'")
            }
        }
    }
}
