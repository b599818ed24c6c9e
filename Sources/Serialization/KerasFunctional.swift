import Graph
import Layers

// Keras 3 functional models (`class_name: "Functional"`): each layer's config plus its `inbound_nodes`, the
// calls that wire it (`keras_history: [layer, node, tensor]`), read into layers and a call list that Train wires
// into a `Model`. Layers: InputLayer, the Sequential ones, Concatenate, Add, Multiply; a layer called several
// times shares its weights. Calls passing tensors by keyword (an LSTM's `initial_state`) are not supported yet.

extension KerasFile {
    /// A reference to a tensor a call produced: the layer's name, its call (node) index, the output index.
    package struct TensorReference: Equatable {
        package var layer: String
        package var node: Int
        package var index: Int
    }

    /// One layer of a functional model.
    package struct FunctionalLayer {
        /// The layer's own name in `config.json`.
        package var name: String
        /// The layer (`nil` for an `InputLayer`, which `inputShape` describes).
        package var layer: (any Layer)?
        /// The input's shape without the batch axis, for an `InputLayer`.
        package var inputShape: [Int]?
        /// The layer's calls, each a list of the tensors passed (a merge layer takes several).
        package var calls: [[TensorReference]]
        /// Whether Keras trains the layer's weights.
        package var isTrainable: Bool
        /// The parameter scalars the layer will allocate for an input shape (`nil` on overflow), known before it is
        /// built, so a description asking for more than the weights file holds is refused before allocating.
        package var parameterScalarCount: ([Int]) -> Int? = { _ in 0 }
    }

    /// What a functional `.keras` file holds; the weights are set by ``loadFunctionalWeights(_:into:)`` once the
    /// caller has wired (and so built) the layers.
    package struct FunctionalContents {
        package var name: String
        package var layers: [FunctionalLayer]
        package var inputs: [TensorReference]
        package var outputs: [TensorReference]
        /// The weights file's paths name layers by Keras class in snake case, numbered in config order.
        package var weightNames: [String]
        package var weights: [UInt8]
        package var weightsSource: String
        /// The most parameter scalars the layers may allocate: what the weights file can hold.
        package var parameterBudget: Int
        package var loss: String?
        package var optimizer: KerasOptimizer?
    }

    /// Whether the `.keras` bytes hold a functional model (rather than a Sequential one).
    package static func isFunctional(bytes: [UInt8], source: String) throws -> Bool {
        let archive = try ZipArchive(bytes: bytes, source: source)
        let file = "\(source)/\(configurationEntry)"
        do {
            return try JSON.parse(try archive.contents(of: configurationEntry)).field("class_name").string() == "Functional"
        } catch let error as JSONError {
            throw KerasError.invalidConfiguration(file: file, reason: error.description)
        }
    }

    /// Reads a functional `.keras` file's layers and wiring.
    package static func readFunctional(bytes: [UInt8], source: String) throws -> FunctionalContents {
        let archive = try ZipArchive(bytes: bytes, source: source)
        let file = "\(source)/\(configurationEntry)"
        let weights = try archive.contents(of: weightsEntry)
        do {
            let root = JSONField(try JSON.parse(try archive.contents(of: configurationEntry)))
            let reader = KerasConfigurationReader(file: file)
            let config = try root.field("config")
            let entries = try config.field("layers").elements()
            guard entries.count <= ArchiveLimits.maximumLayerCount else {
                throw KerasError.invalidConfiguration(file: file, reason: "\(entries.count) layers")
            }
            var layers: [FunctionalLayer] = []
            var classNames: [String] = []
            var described: Int? = 0
            for entry in entries {
                let className = try entry.field("class_name").string()
                let layerConfig = try entry.field("config")
                let name = try entry.optionalField("name")?.string() ?? layerConfig.field("name").string()
                classNames.append(className)
                if className == "InputLayer" {
                    let shape = try layerConfig.optionalField("batch_shape") ?? layerConfig.field("batch_input_shape")
                    layers.append(FunctionalLayer(name: name, layer: nil, inputShape: try reader.readShape(shape),
                                                  calls: [], isTrainable: true))
                    continue
                }
                try reader.checkDTypePolicy(layerConfig)
                var calls: [[TensorReference]] = []
                var firstInputShape: [Int]?
                for node in try entry.field("inbound_nodes").elements() {
                    if let kwargs = try node.optionalField("kwargs") {
                        for (key, value) in try kwargs.members() where key != "training" && !(key == "mask" && value.value == .null) {
                            throw reader.unsupported(value, "no tensors passed by keyword (initial_state, mask)")
                        }
                    }
                    let arguments = try node.field("args").elements()
                    guard arguments.count == 1 else { throw reader.unsupported(try node.field("args"), "one argument") }
                    let tensors: [JSONField]
                    if case .array = arguments[0].value { tensors = try arguments[0].elements() } else { tensors = arguments }
                    calls.append(try tensors.map { tensor in
                        let history = try tensor.field("config").field("keras_history").elements()
                        guard history.count == 3 else { throw reader.unsupported(tensor, "a keras_history of 3") }
                        if firstInputShape == nil, let shape = try tensor.field("config").optionalField("shape") {
                            firstInputShape = try reader.readShape(shape)
                        }
                        return TensorReference(layer: try history[0].string(), node: try history[1].int(in: 0...1 << 20),
                                               index: try history[2].int(in: 0...1 << 20))
                    })
                }
                let layer: any Layer
                var count: ([Int]) -> Int? = { _ in 0 }
                switch className {
                case "Concatenate":
                    layer = Concatenate(axis: try layerConfig.optionalField("axis")?.int(in: -8...8) ?? -1)
                case "Add": layer = Add()
                case "Multiply": layer = Multiply()
                default:
                    let configuration = try reader.readLayer(className: className, entry: entry, config: layerConfig)
                    count = { configuration.parameterScalarCount(inputShape: $0).count }
                    if let shape = firstInputShape { described = checkedSum(described, count(shape)) }
                    do {
                        layer = try configuration.makeLayer()
                    } catch let error as ModelArchiveError {
                        throw KerasError.invalidConfiguration(file: file, reason: error.description)
                    }
                }
                layers.append(FunctionalLayer(name: name, layer: layer, inputShape: nil, calls: calls,
                                              isTrainable: try layerConfig.optionalField("trainable")?.bool() ?? true,
                                              parameterScalarCount: count))
            }
            guard let described, described <= max(weights.count / 4, ArchiveLimits.scalarAllowance) else {
                throw KerasError.invalidConfiguration(file: file, reason: "the layers need more parameters "
                                                      + "than \(weightsEntry) (\(weights.count) bytes) can hold")
            }
            func references(_ key: String) throws -> [TensorReference] {
                let field = try config.field(key)
                let items = try field.elements()
                let lists = items.first.map { if case .array = $0.value { true } else { false } } ?? false ? items : [field]
                return try lists.map { item in
                    let parts = try item.elements()
                    guard parts.count == 3 else { throw reader.unsupported(item, "[layer, node, index]") }
                    return TensorReference(layer: try parts[0].string(), node: try parts[1].int(in: 0...1 << 20),
                                           index: try parts[2].int(in: 0...1 << 20))
                }
            }
            var loss: String?, optimizer: KerasOptimizer?
            if let compile = try root.optionalField("compile_config") {
                if let lossField = try compile.optionalField("loss"), case .string(let name) = lossField.value { loss = name }
                if let optimizerField = try compile.optionalField("optimizer") { optimizer = try reader.readOptimizer(optimizerField) }
            }
            // Keras names weight groups by class, not by the layer's own name (saving_lib's _save_container_state).
            let weightNames = LayerNames.names(ofTypes: classNames)
            return FunctionalContents(name: try config.optionalField("name")?.string() ?? "functional", layers: layers,
                                      inputs: try references("input_layers"), outputs: try references("output_layers"),
                                      weightNames: weightNames, weights: weights, weightsSource: "\(source)/\(weightsEntry)",
                                      parameterBudget: max(weights.count / 4, ArchiveLimits.scalarAllowance),
                                      loss: loss, optimizer: optimizer)
        } catch let error as JSONError {
            throw KerasError.invalidConfiguration(file: file, reason: error.description)
        }
    }

    /// Sets the weights of a functional model's layers (built by wiring them) from its weights file.
    package static func loadFunctionalWeights(_ contents: FunctionalContents, into layers: [any Layer]) throws {
        let named = zip(layers, contents.weightNames).filter { !$0.0.parameters.isEmpty }
        try loadWeights(h5: contents.weights, source: contents.weightsSource, into: named.map(\.0), names: named.map(\.1))
        for (entry, layer) in zip(contents.layers, layers) where !entry.isTrainable {
            for parameter in layer.parameters { parameter.isTrainable = false }
        }
    }
}
