import Layers

// Keras 3's `config.json` (the `keras.saving.serialize_keras_object` format) read into Unroll's layer
// configurations, and written from them. Every option that changes what a layer computes is checked: an
// unsupported value throws naming its path rather than being dropped. One file of a little over 400 lines
// because each layer's reading and its writing mirror each other and read best side by side.

/// What a Keras model configuration describes, in Unroll's terms.
struct KerasModelConfiguration {
    /// The model's name.
    var name: String
    /// The input shape without the batch axis.
    var inputShape: [Int]
    /// The layers with their Keras names (the paths of their weights), InputLayer excluded.
    var layers: [(name: String, configuration: LayerConfiguration, isTrainable: Bool)]
    /// The compiled loss's Keras name, when the file records a training configuration.
    var loss: String?
    /// The compiled optimizer, when the file records one.
    var optimizer: KerasOptimizer?
}

/// A Keras optimizer configuration that maps onto an Unroll optimizer.
package enum KerasOptimizer: Equatable {
    case adam(learningRate: Float, beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool)
    case sgd(learningRate: Float, momentum: Float, nesterov: Bool)
    case rmsprop(learningRate: Float, rho: Float, momentum: Float, epsilon: Float, centered: Bool)

    /// The constant learning rate.
    package var learningRate: Float {
        switch self {
        case .adam(let rate, _, _, _, _), .sgd(let rate, _, _), .rmsprop(let rate, _, _, _, _): rate
        }
    }
}

extension KerasModelConfiguration {
    /// Reads `config.json`; `file` names it in errors.
    static func parse(_ bytes: [UInt8], file: String) throws -> KerasModelConfiguration {
        do {
            return try KerasConfigurationReader(file: file).read(JSONField(try JSON.parse(bytes)))
        } catch let error as JSONError {
            throw KerasError.invalidConfiguration(file: file, reason: error.description)
        }
    }
}

struct KerasConfigurationReader {
    let file: String

    func unsupported(_ field: JSONField, _ supported: String) -> KerasError {
        .unsupportedOption(file: file, path: field.path, value: field.value.serialized(), supported: supported)
    }

    /// Checks that an optional option is absent, `null`, or one of `allowed`.
    func require(_ config: JSONField, _ key: String, in allowed: [JSON], _ supported: String) throws {
        guard let field = try config.optionalField(key) else { return }
        guard allowed.contains(field.value) else { throw unsupported(field, supported) }
    }

    /// Checks that options which only shape training (regularizers, constraints) are unset.
    func requireUnset(_ config: JSONField, _ keys: [String]) throws {
        for key in keys { try require(config, key, in: [], "null") }
    }

    func read(_ root: JSONField) throws -> KerasModelConfiguration {
        let className = try root.field("class_name").string()
        guard className == "Sequential" else {
            throw KerasError.unsupportedLayer(file: file, path: "the model", className: className + " model")
        }
        let config = try root.field("config")
        var inputShape: [Int]?
        var layers: [(String, LayerConfiguration, Bool)] = []
        let entries = try config.field("layers").elements()
        guard entries.count <= ArchiveLimits.maximumLayerCount else {
            throw KerasError.invalidConfiguration(file: file, reason: "\(entries.count) layers (at most \(ArchiveLimits.maximumLayerCount))")
        }
        for (index, entry) in entries.enumerated() {
            let layerClass = try entry.field("class_name").string()
            let layerConfig = try entry.field("config")
            if layerClass == "InputLayer" {
                guard index == 0 else {
                    throw KerasError.unsupportedLayer(file: file, path: entry.path, className: "InputLayer after other layers")
                }
                let shape = try layerConfig.optionalField("batch_shape") ?? layerConfig.field("batch_input_shape")
                inputShape = try readShape(shape)
                continue
            }
            if inputShape == nil, index == 0 {
                // Without an InputLayer Keras records the shape a layer was built with.
                if let built = try entry.optionalField("build_config")?.optionalField("input_shape") {
                    inputShape = try readShape(built)
                } else if let declared = try layerConfig.optionalField("batch_input_shape") {
                    inputShape = try readShape(declared)
                }
            }
            try checkDTypePolicy(layerConfig)
            let name = try layerConfig.field("name").string()
            let isTrainable = try layerConfig.optionalField("trainable")?.bool() ?? true
            layers.append((name, try readLayer(className: layerClass, entry: entry, config: layerConfig), isTrainable))
        }
        guard let inputShape else {
            throw KerasError.invalidConfiguration(file: file, reason: "\(config.path).layers: no InputLayer or recorded input shape")
        }
        guard !layers.isEmpty else { throw KerasError.invalidConfiguration(file: file, reason: "the model has no layers") }
        var loss: String?
        var optimizer: KerasOptimizer?
        if let compile = try root.optionalField("compile_config") {
            if let lossField = try compile.optionalField("loss") {
                guard case .string(let name) = lossField.value else { throw unsupported(lossField, "a built-in loss named by a string") }
                loss = name
            }
            if let optimizerField = try compile.optionalField("optimizer") { optimizer = try readOptimizer(optimizerField) }
        }
        return KerasModelConfiguration(name: try config.optionalField("name")?.string() ?? "sequential",
                                       inputShape: inputShape, layers: layers, loss: loss, optimizer: optimizer)
    }

    /// Reads a batch shape `[null, d1, d2, ...]`, dropping the batch axis; every other size must be known.
    func readShape(_ field: JSONField) throws -> [Int] {
        let dimensions = try field.elements()
        guard (2...ArchiveLimits.maximumRank + 1).contains(dimensions.count) else {
            throw KerasError.invalidConfiguration(
                file: file, reason: "\(field.path): \(field.value.serialized()) is not a batch shape of rank "
                    + "2...\(ArchiveLimits.maximumRank + 1)")
        }
        return try dimensions.dropFirst().map { dimension in
            guard dimension.value != .null else {
                throw unsupported(field, "a fixed size for every axis but the batch (Unroll builds layers for one input shape)")
            }
            return try dimension.int(in: 1...ArchiveLimits.maximumSize)
        }
    }

    func checkDTypePolicy(_ config: JSONField) throws {
        guard let dtype = try config.optionalField("dtype") else { return }
        let name: JSONField
        if case .object = dtype.value { name = try dtype.field("config").field("name") } else { name = dtype }
        guard name.value == .string("float32") else { throw unsupported(name, "\"float32\"") }
    }

    func readActivation(_ config: JSONField, _ key: String, allowed: [Activation]) throws -> Activation {
        guard let field = try config.optionalField(key) else { return .linear }
        let names = allowed.map { "\"\($0.kerasName)\"" }.joined(separator: ", ")
        guard case .string(let name) = field.value, let activation = allowed.first(where: { $0.kerasName == name }) else {
            throw unsupported(field, names)
        }
        return activation
    }

    func readLayer(className: String, entry: JSONField, config: JSONField) throws -> LayerConfiguration {
        switch className {
        case "Dense":
            try requireUnset(config, ["kernel_regularizer", "bias_regularizer", "activity_regularizer",
                                      "kernel_constraint", "bias_constraint", "quantization_config", "lora_rank"])
            return .dense(outputSize: try config.field("units").int(in: 1...ArchiveLimits.maximumSize),
                          activation: try readActivation(config, "activation", allowed: Activation.allCases),
                          usesBias: try config.optionalField("use_bias")?.bool() ?? true)
        case "Embedding":
            try requireUnset(config, ["embeddings_regularizer", "activity_regularizer", "embeddings_constraint",
                                      "quantization_config", "lora_rank"])
            try require(config, "mask_zero", in: [.bool(false)], "false (Unroll has no masks)")
            try require(config, "sparse", in: [.bool(false)], "false")
            return .embedding(vocabularySize: try config.field("input_dim").int(in: 1...ArchiveLimits.maximumSize),
                              outputSize: try config.field("output_dim").int(in: 1...ArchiveLimits.maximumSize),
                              maskZero: false)
        case "Dropout":
            try requireUnset(config, ["noise_shape"])
            return .dropout(rate: try config.field("rate").float("a rate in [0, 1)") { $0 >= 0 && $0 < 1 })
        case "LSTM", "GRU", "SimpleRNN":
            return .recurrent(try readRecurrent(className: className, config: config))
        case "Bidirectional":
            let modes = ["concat": "concatenate", "sum": "sum", "mul": "multiply", "ave": "average"]
            let modeField = try config.field("merge_mode")
            guard case .string(let keras) = modeField.value, let mode = modes[keras] else {
                throw unsupported(modeField, "\"concat\", \"sum\", \"mul\", \"ave\"")
            }
            let inner = try config.field("layer")
            let innerClass = try inner.field("class_name").string()
            guard ["LSTM", "GRU", "SimpleRNN"].contains(innerClass) else {
                throw KerasError.unsupportedLayer(file: file, path: inner.path, className: innerClass)
            }
            let forward = try readRecurrent(className: innerClass, config: try inner.field("config"))
            if let backward = try config.optionalField("backward_layer") {
                // Keras allows a different backward layer; Unroll's wrapper runs a twin of the forward one.
                var twin = forward
                twin.goBackwards.toggle()
                let backwardClass = try backward.field("class_name").string()
                let backwardLayer = try readRecurrent(className: backwardClass, config: try backward.field("config"))
                guard backwardClass == innerClass, backwardLayer == twin else {
                    throw unsupported(backward, "a backward layer that mirrors the forward one")
                }
            }
            return .bidirectional(mergeMode: mode, layer: forward)
        default:
            throw KerasError.unsupportedLayer(file: file, path: entry.path, className: className)
        }
    }

    func readRecurrent(className: String, config: JSONField) throws -> RecurrentConfiguration {
        try checkDTypePolicy(config)
        try requireUnset(config, ["kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "activity_regularizer",
                                  "kernel_constraint", "recurrent_constraint", "bias_constraint"])
        try require(config, "use_bias", in: [.bool(true)], "true")
        try require(config, "return_state", in: [.bool(false)], "false")
        try require(config, "dropout", in: [.number(0)], "0 (no input dropout inside recurrent layers)")
        try require(config, "recurrent_dropout", in: [.number(0)], "0")
        try require(config, "time_major", in: [.bool(false)], "false")
        let units = try config.field("units").int(in: 1...ArchiveLimits.maximumSize)
        let cell: CellConfiguration
        switch className {
        case "LSTM", "GRU":
            try require(config, "activation", in: [.string("tanh")], "\"tanh\"")
            try require(config, "recurrent_activation", in: [.string("sigmoid")], "\"sigmoid\"")
            cell = className == "LSTM"
                ? .lstm(hiddenSize: units, unitForgetBias: try config.optionalField("unit_forget_bias")?.bool() ?? true)
                : .gru(hiddenSize: units, resetAfter: try config.optionalField("reset_after")?.bool() ?? true)
        default:
            cell = .simpleRNN(hiddenSize: units,
                              activation: try readActivation(config, "activation", allowed: [.tanh, .relu, .sigmoid, .linear]))
        }
        return RecurrentConfiguration(cell: cell,
                                      returnSequences: try config.optionalField("return_sequences")?.bool() ?? false,
                                      goBackwards: try config.optionalField("go_backwards")?.bool() ?? false,
                                      isStateful: try config.optionalField("stateful")?.bool() ?? false)
    }

    func readOptimizer(_ field: JSONField) throws -> KerasOptimizer {
        let className = try field.field("class_name").string()
        let config = try field.field("config")
        try requireUnset(config, ["weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "loss_scale_factor",
                                  "gradient_accumulation_steps"])
        try require(config, "use_ema", in: [.bool(false)], "false")
        let rateField = try config.field("learning_rate")
        guard case .number = rateField.value else { throw unsupported(rateField, "a constant learning rate") }
        let learningRate = try rateField.float("a positive finite rate") { $0.isFinite && $0 > 0 }
        func number(_ key: String, _ fallback: Float, _ requirement: String, _ isValid: (Float) -> Bool) throws -> Float {
            try config.optionalField(key)?.float(requirement, where: isValid) ?? fallback
        }
        let epsilon = try number("epsilon", 1e-7, "a finite number > 0") { $0.isFinite && $0 > 0 }
        switch className {
        case "Adam":
            return .adam(learningRate: learningRate,
                         beta1: try number("beta_1", 0.9, "in [0, 1)") { $0 >= 0 && $0 < 1 },
                         beta2: try number("beta_2", 0.999, "in [0, 1)") { $0 >= 0 && $0 < 1 },
                         epsilon: epsilon, amsgrad: try config.optionalField("amsgrad")?.bool() ?? false)
        case "SGD":
            return .sgd(learningRate: learningRate, momentum: try number("momentum", 0, "in [0, 1]") { $0 >= 0 && $0 <= 1 },
                        nesterov: try config.optionalField("nesterov")?.bool() ?? false)
        case "RMSprop":
            return .rmsprop(learningRate: learningRate, rho: try number("rho", 0.9, "in [0, 1)") { $0 >= 0 && $0 < 1 },
                            momentum: try number("momentum", 0, "in [0, 1]") { $0 >= 0 && $0 <= 1 },
                            epsilon: epsilon, centered: try config.optionalField("centered")?.bool() ?? false)
        default:
            throw unsupported(try field.field("class_name"), "\"Adam\", \"SGD\", \"RMSprop\"")
        }
    }
}

extension Activation {
    /// The name Keras gives this activation.
    var kerasName: String { rawValue }
}

// MARK: - Writing

extension KerasModelConfiguration {
    /// Returns `config.json` for a Sequential model of these layers, in the form Keras 3 writes and reads.
    ///
    /// - Throws: ``KerasError/cannotExport(reason:)`` for a layer or cell Keras has no built-in twin for.
    func serialized() throws -> JSON {
        var layerObjects: [JSON] = [Self.layerObject("InputLayer", [
            "batch_shape": Self.batchShape(inputShape), "dtype": .string("float32"), "sparse": .bool(false),
            "name": .string("input_layer"),
        ])]
        var shape = inputShape
        for (name, configuration, isTrainable) in layers {
            var object = try Self.layerJSON(configuration, name: name, isTrainable: isTrainable)
            object["build_config"] = .object(JSONObject(["input_shape": Self.batchShape(shape)]))
            layerObjects.append(.object(object))
            shape = configuration.parameterScalarCount(inputShape: shape).outputShape
        }
        var model = JSONObject([
            "module": .string("keras"), "class_name": .string("Sequential"),
            "config": .object(JSONObject([
                "name": .string(name), "trainable": .bool(true), "dtype": .string("float32"),
                "layers": .array(layerObjects),
            ])),
            "registered_name": .null,
            "build_config": .object(JSONObject(["input_shape": Self.batchShape(inputShape)])),
        ])
        if let loss, let optimizer {
            model["compile_config"] = .object(JSONObject([
                "optimizer": Self.optimizerJSON(optimizer), "loss": .string(loss), "loss_weights": .null,
                "metrics": .null, "weighted_metrics": .null, "run_eagerly": .bool(false),
                "steps_per_execution": .number(1), "jit_compile": .bool(false),
            ]))
        }
        return .object(model)
    }

    /// An optimizer as Keras serializes it; numbers are the `Float` settings' shortest decimals.
    private static func optimizerJSON(_ optimizer: KerasOptimizer) -> JSON {
        func number(_ value: Float) -> JSON { .number(JSONNumber(Double("\(value)") ?? Double(value))) }
        let className: String
        var config = JSONObject()
        switch optimizer {
        case let .adam(learningRate, beta1, beta2, epsilon, amsgrad):
            className = "Adam"
            config["name"] = .string("adam")
            config["learning_rate"] = number(learningRate)
            config["beta_1"] = number(beta1)
            config["beta_2"] = number(beta2)
            config["epsilon"] = number(epsilon)
            config["amsgrad"] = .bool(amsgrad)
        case let .sgd(learningRate, momentum, nesterov):
            className = "SGD"
            config["name"] = .string("sgd")
            config["learning_rate"] = number(learningRate)
            config["momentum"] = number(momentum)
            config["nesterov"] = .bool(nesterov)
        case let .rmsprop(learningRate, rho, momentum, epsilon, centered):
            className = "RMSprop"
            config["name"] = .string("rmsprop")
            config["learning_rate"] = number(learningRate)
            config["rho"] = number(rho)
            config["momentum"] = number(momentum)
            config["epsilon"] = number(epsilon)
            config["centered"] = .bool(centered)
        }
        return .object(JSONObject(["module": .string("keras.optimizers"), "class_name": .string(className),
                                   "config": .object(config), "registered_name": .null]))
    }

    private static func batchShape(_ shape: [Int]) -> JSON { .array([.null] + shape.map { .number(JSONNumber($0)) }) }

    private static func layerObject(_ className: String, _ config: KeyValuePairs<String, JSON>) -> JSON {
        .object(JSONObject(["module": .string("keras.layers"), "class_name": .string(className),
                            "config": .object(JSONObject(config)), "registered_name": .null]))
    }

    private static func layerJSON(_ configuration: LayerConfiguration, name: String, isTrainable: Bool) throws -> JSONObject {
        let common: [(String, JSON)] = [("name", .string(name)), ("trainable", .bool(isTrainable)), ("dtype", .string("float32"))]
        var config = JSONObject()
        for (key, value) in common { config[key] = value }
        let className: String
        switch configuration {
        case .dense(let outputSize, let activation, let usesBias):
            className = "Dense"
            config["units"] = .number(JSONNumber(outputSize))
            config["activation"] = .string(activation.kerasName)
            config["use_bias"] = .bool(usesBias)
        case .dropout(let rate):
            className = "Dropout"
            config["rate"] = .number(JSONNumber(Double(rate)))
        case .embedding(let vocabularySize, let outputSize, let maskZero):
            className = "Embedding"
            config["input_dim"] = .number(JSONNumber(vocabularySize))
            config["output_dim"] = .number(JSONNumber(outputSize))
            if maskZero { config["mask_zero"] = .bool(true) }
        case .recurrent(let layer):
            (className, config) = try recurrentJSON(layer, common: common)
        case .bidirectional(let mergeMode, let layer):
            className = "Bidirectional"
            let modes = ["concatenate": "concat", "sum": "sum", "multiply": "mul", "average": "ave"]
            config["merge_mode"] = .string(modes[mergeMode] ?? mergeMode)
            var backward = layer
            backward.goBackwards.toggle()
            let (innerClass, forwardConfig) = try recurrentJSON(layer, common: [("name", .string("forward_\(name)")),
                                                                                  ("trainable", .bool(isTrainable)),
                                                                                  ("dtype", .string("float32"))])
            let (_, backwardConfig) = try recurrentJSON(backward, common: [("name", .string("backward_\(name)")),
                                                                             ("trainable", .bool(isTrainable)),
                                                                             ("dtype", .string("float32"))])
            config["layer"] = .object(JSONObject(["module": .string("keras.layers"), "class_name": .string(innerClass),
                                                  "config": .object(forwardConfig), "registered_name": .null]))
            config["backward_layer"] = .object(JSONObject(["module": .string("keras.layers"), "class_name": .string(innerClass),
                                                           "config": .object(backwardConfig), "registered_name": .null]))
        case .echoStateNetwork:
            throw KerasError.cannotExport(reason: "layer '\(name)': EchoStateNetwork has no Keras counterpart")
        case .concatenate, .add, .multiply, .repeatVector, .timeDistributed, .masking:
            throw KerasError.cannotExport(reason: "layer '\(name)': a Sequential model's .keras export covers Dense, "
                                          + "Dropout, Embedding and the recurrent layers")
        }
        return JSONObject(["module": .string("keras.layers"), "class_name": .string(className),
                           "config": .object(config), "registered_name": .null])
    }

    private static func recurrentJSON(_ layer: RecurrentConfiguration, common: [(String, JSON)]) throws -> (String, JSONObject) {
        var config = JSONObject()
        for (key, value) in common { config[key] = value }
        config["return_sequences"] = .bool(layer.returnSequences)
        config["return_state"] = .bool(false)
        config["go_backwards"] = .bool(layer.goBackwards)
        config["stateful"] = .bool(layer.isStateful)
        let className: String
        switch layer.cell {
        case .lstm(let hiddenSize, let unitForgetBias):
            className = "LSTM"
            config["units"] = .number(JSONNumber(hiddenSize))
            config["activation"] = .string("tanh")
            config["recurrent_activation"] = .string("sigmoid")
            config["use_bias"] = .bool(true)
            config["unit_forget_bias"] = .bool(unitForgetBias)
        case .gru(let hiddenSize, let resetAfter):
            className = "GRU"
            config["units"] = .number(JSONNumber(hiddenSize))
            config["activation"] = .string("tanh")
            config["recurrent_activation"] = .string("sigmoid")
            config["use_bias"] = .bool(true)
            config["reset_after"] = .bool(resetAfter)
        case .simpleRNN(let hiddenSize, let activation):
            className = "SimpleRNN"
            config["units"] = .number(JSONNumber(hiddenSize))
            config["activation"] = .string(activation.kerasName)
            config["use_bias"] = .bool(true)
        case .peepholeLSTM, .indRNN, .stacked:
            throw KerasError.cannotExport(reason: "a recurrent layer of \(layer.cell.kind) cells has no Keras counterpart")
        }
        return (className, config)
    }
}
