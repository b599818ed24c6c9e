import Foundation
import Graph
import Layers
import Serialization

// Keras 3 files on `Sequential`: `.keras` models and `.weights.h5` weights, both ways. The formats live in
// Serialization (KerasFile, Zip, HDF5); this file maps Keras' training configuration onto Train's types.

extension Sequential {
    /// Loads a Keras 3 `.keras` file: a Sequential model of `InputLayer`, `LSTM`, `GRU`, `SimpleRNN`,
    /// `Bidirectional`, `Dense`, `Embedding` and `Dropout` layers, with its weights.
    ///
    /// ```swift
    /// let model = try Sequential.load(keras: URL(fileURLWithPath: "forecaster.keras"))
    /// let forecast = try model.predict(windows)
    /// ```
    /// When the file records a training configuration
    /// (`model.compile(...)` in Keras) and `compile` is true, the model is compiled with the same loss and
    /// optimizer (Adam, SGD or RMSprop with their settings), ready for `fit`; optimizer state is not restored.
    ///
    /// - Throws: ``KerasError`` naming an unsupported layer or option (for example `recurrent_activation`
    ///   other than `"sigmoid"`) by its path in `config.json`, or a weight variable missing or of the wrong
    ///   shape by its HDF5 path; ``ZipError`` or ``HDF5Error`` for a damaged or unsupported container.
    public static func load(keras url: URL, compile: Bool = true) throws -> Sequential {
        let contents = try KerasFile.read(from: url)
        let model = Sequential(contents.layers, inputShape: contents.inputShape, name: contents.name)
        if compile, let lossName = contents.loss {
            let file = "\(url.path)/config.json"
            guard let loss = Loss(kerasName: lossName) else {
                throw KerasError.unsupportedOption(file: file, path: "compile_config.loss", value: "\"\(lossName)\"",
                                                   supported: "mse, mae, binary_crossentropy, categorical_crossentropy, "
                                                       + "sparse_categorical_crossentropy, or compile: false")
            }
            try model.compile(loss: loss, optimizer: contents.optimizer.map(makeOptimizer) ?? Adam())
        }
        return model
    }

    /// Returns the Train loss for a Keras loss name, or throws naming it.
    static func kerasLoss(_ name: String, file: String) throws -> Loss {
        guard let loss = Loss(kerasName: name) else {
            throw KerasError.unsupportedOption(file: file, path: "compile_config.loss", value: "\"\(name)\"",
                                               supported: "mse, mae, binary_crossentropy, categorical_crossentropy, "
                                                   + "sparse_categorical_crossentropy, or compile: false")
        }
        return loss
    }

    /// Loads a saved model, recognising the format: a `.keras` file (see ``load(keras:compile:)``, whose `compile`
    /// this passes on) or a model directory written by ``save(to:)``.
    public static func load(_ url: URL, compile: Bool = true) throws -> Sequential {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        if url.pathExtension == "keras" || (exists && !isDirectory.boolValue) {
            return try load(keras: url, compile: compile)
        }
        return try load(from: url)
    }

    /// Saves the model as a Keras 3 `.keras` file (atomically) that `keras.saving.load_model` opens.
    ///
    /// Layers are named ``layerNames`` (`lstm`, `lstm_1`), which are also the weights' paths. When the model is
    /// compiled with a loss Keras has (mean squared or absolute error, cross-entropies on probabilities) and an
    /// `Adam`, `SGD` or `RMSProp` without weight decay, clipping or schedule, that training configuration is written
    /// and Keras compiles the model on load (optimizer state starts afresh); otherwise Keras opens it uncompiled.
    ///
    /// - Throws: ``KerasError/cannotExport(reason:)`` for a layer or cell without a Keras counterpart
    ///   (`EchoStateNetwork`, peephole or IndRNN cells, stacked cells), ``TrainingError`` when the layers do not
    ///   fit, ``AtomicWriteError`` when the file cannot be written.
    public func save(keras url: URL) throws {
        _ = try layerShapes()
        guard let inputShape else { throw TrainingError.missingInputShape(layer: layers.first?.typeName ?? "model") }
        let bytes = try KerasFile.archive(name: name, inputShape: inputShape, layers: layers, names: layerNames,
                                          loss: loss?.kerasName, optimizer: optimizer.flatMap(Self.kerasOptimizer))
        try writeAtomically(Data(bytes), to: url)
    }

    /// Sets every weight from a Keras weights file (`model.save_weights("m.weights.h5")`).
    ///
    /// Keras finds a layer's variables by its class name in snake case, numbered within the model (`lstm`,
    /// `lstm_1`, `dropout`, `dense`: ``layerNames``), not by the layer's own name, so the model must have the
    /// same layers in the same order as the Keras one.
    ///
    /// - Throws: ``KerasError`` naming a variable that is missing, left over or of the wrong shape (nothing
    ///   changes then), ``HDF5Error`` for a damaged or unsupported file.
    public func loadWeights(kerasH5 url: URL) throws {
        _ = try layerShapes()
        try KerasFile.loadWeights(h5: try KerasFile.readBytes(url), source: url.path, into: layers, names: layerNames)
    }

    /// Writes every weight as a Keras weights file (atomically) that `model.load_weights` reads.
    public func saveWeights(kerasH5 url: URL) throws {
        _ = try layerShapes()
        try writeAtomically(Data(try KerasFile.weightsFile(layers: layers, names: layerNames)), to: url)
    }

    /// The Keras twin of an optimizer, if it has one with the same settings.
    private static func kerasOptimizer(_ optimizer: any Optimizer) -> KerasOptimizer? {
        switch optimizer {
        case let adam as Adam where adam.weightDecay == 0 && adam.clipping == nil && adam.schedule == nil:
            .adam(learningRate: adam.learningRate, beta1: adam.beta1, beta2: adam.beta2, epsilon: adam.epsilon,
                  amsgrad: adam.usesAMSGrad)
        case let sgd as SGD where sgd.weightDecay == 0 && sgd.clipping == nil && sgd.schedule == nil:
            .sgd(learningRate: sgd.learningRate, momentum: sgd.momentum, nesterov: sgd.usesNesterovMomentum)
        case let rmsprop as RMSProp where rmsprop.weightDecay == 0 && rmsprop.clipping == nil && rmsprop.schedule == nil:
            .rmsprop(learningRate: rmsprop.learningRate, rho: rmsprop.rho, momentum: rmsprop.momentum,
                     epsilon: rmsprop.epsilon, centered: rmsprop.isCentered)
        default: nil
        }
    }

    static func makeOptimizer(_ optimizer: KerasOptimizer) -> any Optimizer {
        switch optimizer {
        case let .adam(learningRate, beta1, beta2, epsilon, amsgrad):
            Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad)
        case let .sgd(learningRate, momentum, nesterov):
            SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov)
        case let .rmsprop(learningRate, rho, momentum, epsilon, centered):
            RMSProp(learningRate: learningRate, rho: rho, momentum: momentum, epsilon: epsilon, centered: centered)
        }
    }
}

extension Loss {
    /// The name Keras gives this loss, if it has the same one (cross-entropies from logits have none as a string).
    var kerasName: String? {
        switch self {
        case .meanSquaredError: "mse"
        case .meanAbsoluteError: "mae"
        case .binaryCrossEntropy(false): "binary_crossentropy"
        case .categoricalCrossEntropy(false): "categorical_crossentropy"
        case .sparseCategoricalCrossEntropy(false): "sparse_categorical_crossentropy"
        default: nil
        }
    }

    /// The loss Keras names `name` (`"mse"` or `"mean_squared_error"`), if Unroll has it.
    init?(kerasName name: String) {
        switch name {
        case "mse", "mean_squared_error", "MeanSquaredError": self = .meanSquaredError
        case "mae", "mean_absolute_error", "MeanAbsoluteError": self = .meanAbsoluteError
        case "binary_crossentropy", "BinaryCrossentropy": self = .binaryCrossEntropy()
        case "categorical_crossentropy", "CategoricalCrossentropy": self = .categoricalCrossEntropy()
        case "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy": self = .sparseCategoricalCrossEntropy()
        default: return nil
        }
    }
}
