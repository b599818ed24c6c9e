import Foundation
import Graph
import Layers

/// Keras 3's files: a `.keras` archive (a stored zip of `metadata.json`, `config.json` and `model.weights.h5`)
/// and a `.weights.h5` weights file, read into and written from a list of Unroll layers.
///
/// Works on layers and their Keras names, so it knows nothing of the model class that holds them; the public
/// entry points are on `Sequential` (Train, `Sequential+Keras.swift`). Weights live in the HDF5 file at
/// `layers/<name>/vars/<i>` (Dense: kernel, bias; Embedding: embeddings), `layers/<name>/cell/vars/<i>` (LSTM,
/// GRU, SimpleRNN: kernel, recurrent kernel, bias) and `layers/<name>/forward_layer/cell/vars/<i>` and
/// `backward_layer/...` (Bidirectional), in the layouts Unroll itself uses.
package enum KerasFile {
    /// What a `.keras` file holds, in Unroll's terms.
    package struct Contents {
        /// The model's name.
        package var name: String
        /// The input shape without the batch axis.
        package var inputShape: [Int]
        /// The layers, built for `inputShape`, their weights set from the file.
        package var layers: [any Layer]
        /// The compiled loss's Keras name, if the file records a training configuration.
        package var loss: String?
        /// The compiled optimizer, if the file records one.
        package var optimizer: KerasOptimizer?
    }

    static let configurationEntry = "config.json"
    static let weightsEntry = "model.weights.h5"
    static let metadataEntry = "metadata.json"

    /// Reads the `.keras` file at `url`.
    ///
    /// - Throws: ``KerasError``, ``ZipError``, ``HDF5Error`` naming the file and the problem, or
    ///   ``ModelArchiveError/unreadableFile(path:reason:)``.
    package static func read(from url: URL) throws -> Contents {
        try read(bytes: try readBytes(url), source: url.path)
    }

    /// Reads `.keras` bytes; `source` names them in errors.
    package static func read(bytes: [UInt8], source: String) throws -> Contents {
        let archive = try ZipArchive(bytes: bytes, source: source)
        let configurationFile = "\(source)/\(configurationEntry)"
        let configuration = try KerasModelConfiguration.parse(try archive.contents(of: configurationEntry), file: configurationFile)
        let weights = try archive.contents(of: weightsEntry)
        // Layers allocate their weights when built: a description asking for more scalars than the weights file
        // could hold (4 bytes each) is refused before anything is allocated.
        var shape = configuration.inputShape
        var described: Int? = 0
        for (_, layer, _) in configuration.layers {
            let (count, next) = layer.parameterScalarCount(inputShape: shape)
            described = checkedSum(described, count)
            shape = next
        }
        guard let described, described <= max(weights.count / 4, ArchiveLimits.scalarAllowance) else {
            throw KerasError.invalidConfiguration(file: configurationFile, reason: "the layers need more parameters "
                                                  + "than \(weightsEntry) (\(weights.count) bytes) can hold")
        }
        let layers = try configuration.layers.map { _, layer, _ in
            do {
                return try layer.makeLayer()
            } catch let error as ModelArchiveError {
                throw KerasError.invalidConfiguration(file: configurationFile, reason: error.description)
            }
        }
        try build(layers, inputShape: configuration.inputShape, file: configurationFile)
        for (layer, entry) in zip(layers, configuration.layers) where !entry.isTrainable {
            for parameter in layer.parameters { parameter.isTrainable = false }
        }
        // Keras addresses weights by class name in snake case, numbered within the model, never by the layer's
        // own name (saving_lib's _save_container_state): the same rule as Unroll's layer names.
        try loadWeights(h5: weights, source: "\(source)/\(weightsEntry)", into: layers, names: LayerNames.names(of: layers))
        return Contents(name: configuration.name, inputShape: configuration.inputShape, layers: layers,
                        loss: configuration.loss, optimizer: configuration.optimizer)
    }

    /// Builds layers in order from `inputShape`, reporting a stack that does not fit as an invalid configuration.
    private static func build(_ layers: [any Layer], inputShape: [Int], file: String) throws {
        var shape = inputShape
        for layer in layers {
            do {
                try layer.build(inputShape: shape)
                shape = try layer.outputShape(forInputShape: shape)
            } catch let error as ShapeError {
                throw KerasError.invalidConfiguration(file: file, reason: "the layers do not fit together: \(error)")
            }
        }
    }

    /// Returns the `.keras` bytes of a Sequential model of built `layers` named `names`.
    ///
    /// - Throws: ``KerasError/cannotExport(reason:)`` for a layer Keras has no counterpart for.
    /// `loss` (a Keras loss name) and `optimizer` become the file's training configuration when both are given; the
    /// optimizer's variables are written as Keras writes those of a compiled model saved before training
    /// (`iterations` 0 and the learning rate), so Keras compiles the model on load and starts its state afresh.
    package static func archive(name: String, inputShape: [Int], layers: [any Layer], names: [String],
                                loss: String? = nil, optimizer: KerasOptimizer? = nil) throws -> [UInt8] {
        let configurations = try zip(layers, names).map { layer, name in
            guard let layer = layer as? any ArchivableLayer else {
                throw KerasError.cannotExport(reason: "layer '\(name)' (\(layer.typeName)) has no Keras counterpart")
            }
            return (name, try layer.archivedConfiguration(), layer.parameters.allSatisfy(\.isTrainable))
        }
        let configuration = KerasModelConfiguration(name: name, inputShape: inputShape, layers: configurations,
                                                    loss: optimizer == nil ? nil : loss, optimizer: loss == nil ? nil : optimizer)
        let metadata = JSON.object(JSONObject(["keras_version": .string("3.15.1"), "saved_by": .string("Unroll")]))
        return try ZipArchive.archive([
            (metadataEntry, Array(metadata.serialized().utf8)),
            (configurationEntry, Array(try configuration.serialized().serialized().utf8)),
            (weightsEntry, try weightsFile(layers: layers, names: names,
                                           learningRate: configuration.loss == nil ? nil : optimizer?.learningRate)),
        ])
    }

    // MARK: Weights

    /// The groups of a layer's variables in a Keras weights file, each with its parameters in `vars/<i>` order
    /// (``WeightIdentity/kerasVariable()``); a layer without parameters Keras files know gets its empty group.
    static func variableGroups(of layer: any Layer, name: String) throws -> [(path: String, parameters: [Parameter])] {
        let identities = WeightNames.identities(of: [layer], names: [name])
        guard !identities.isEmpty else {
            guard let kind = WeightKind(of: layer), let variables = WeightIdentity.kerasVariables[kind] else {
                throw KerasError.cannotExport(reason: "layer '\(name)' (\(layer.typeName)) has no Keras counterpart")
            }
            return [("layers/\(name)/\(variables.group)", [])]
        }
        var groups: [(path: String, parameters: [Parameter])] = []
        for identity in identities {
            let (group, _) = try identity.kerasVariable()
            if groups.last?.path == group {
                groups[groups.count - 1].parameters.append(identity.parameter)
            } else {
                groups.append((group, [identity.parameter]))
            }
        }
        return groups
    }

    /// Sets the parameters of built `layers`, named `names` as in the file, from Keras weights file bytes.
    ///
    /// Every variable is read and checked (present, right shape, none left over) before any parameter changes.
    ///
    /// - Throws: ``KerasError`` naming the HDF5 path, or ``HDF5Error``.
    package static func loadWeights(h5 bytes: [UInt8], source: String, into layers: [any Layer], names: [String]) throws {
        let file = try HDF5File(bytes: bytes, source: source)
        var assignments: [(Parameter, Tensor)] = []
        for (layer, name) in zip(layers, names) {
            for (path, parameters) in try variableGroups(of: layer, name: name) where !parameters.isEmpty {
                let variables: [String: HDF5Dataset]
                do {
                    variables = try file.datasets(inGroupAt: path)
                } catch HDF5Error.notFound(_, let missing) where path.hasPrefix(missing) {
                    let present = (try? file.memberNames(ofGroupAt: "layers"))
                        .map { " (the file has layers: \($0.joined(separator: ", ")))" } ?? ""
                    throw KerasError.missingWeight(file: source, path: path + present)
                }
                let expected = parameters.indices.map(String.init)
                let extra = variables.keys.filter { !expected.contains($0) }.sorted()
                guard extra.isEmpty else { throw KerasError.unexpectedWeights(file: source, path: path, names: extra) }
                for (index, parameter) in parameters.enumerated() {
                    let variable = "\(path)/\(index)"
                    guard let dataset = variables[String(index)] else { throw KerasError.missingWeight(file: source, path: variable) }
                    guard dataset.shape == parameter.shape else {
                        throw KerasError.weightShapeMismatch(file: source, path: variable, expected: parameter.shape,
                                                             actual: dataset.shape)
                    }
                    assignments.append((parameter, Tensor(shape: dataset.shape, scalars: dataset.values.map { Float($0) })))
                }
            }
        }
        for (parameter, value) in assignments { parameter.value = value }
    }

    /// Returns a Keras weights file (HDF5) of the parameters of built `layers` named `names`, with a fresh optimizer's
    /// variables (`iterations` 0, then `learningRate`) when a learning rate is given.
    package static func weightsFile(layers: [any Layer], names: [String], learningRate: Float? = nil) throws -> [UInt8] {
        var layerGroups: [(name: String, node: HDF5Node)] = []
        for (layer, name) in zip(layers, names) {
            // Nested groups keyed by path components below `layers/<name>`.
            var tree: [(name: String, node: HDF5Node)] = []
            for (path, parameters) in try variableGroups(of: layer, name: name) {
                let datasets = parameters.enumerated().map { index, parameter in
                    (name: String(index), node: HDF5Node.dataset(shape: parameter.shape, values: parameter.value.scalars))
                }
                let components = path.split(separator: "/").dropFirst(2).map(String.init)
                tree = insert(datasets, at: components[...], into: tree)
            }
            layerGroups.append((name, .group(tree)))
        }
        var root: [(name: String, node: HDF5Node)] = [("layers", .group(layerGroups)), ("vars", .group([]))]
        if let learningRate {
            root.append(("optimizer", .group([("vars", .group([("0", .integerDataset(shape: [], values: [0])),
                                                               ("1", .dataset(shape: [], values: [learningRate]))]))])))
        }
        return try HDF5File.encode(root)
    }

    private static func insert(_ datasets: [(name: String, node: HDF5Node)], at path: ArraySlice<String>,
                               into members: [(name: String, node: HDF5Node)]) -> [(name: String, node: HDF5Node)] {
        guard let first = path.first else { return members }
        var members = members
        let rest = path.dropFirst()
        if let index = members.firstIndex(where: { $0.name == first }), case .group(let children) = members[index].node {
            members[index].node = .group(rest.isEmpty ? children + datasets : insert(datasets, at: rest, into: children))
        } else {
            members.append((first, .group(rest.isEmpty ? datasets : insert(datasets, at: rest, into: []))))
        }
        return members
    }

    /// Returns the bytes of the file at `url`.
    package static func readBytes(_ url: URL) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else { throw ModelArchiveError.missingFile(path: url.path) }
        do {
            return Array(try Data(contentsOf: url, options: .mappedIfSafe))
        } catch {
            throw ModelArchiveError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
    }
}
