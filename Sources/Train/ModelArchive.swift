import Foundation
import Graph
import Layers

/// A problem saving or loading a model directory, or importing weights; every case names the file and the problem.
///
/// Loading can also throw ``SafeTensorsError`` (a truncated or corrupted weights file) and ``WeightError``
/// (a tensor missing or of the wrong shape, named as in the file).
public enum ModelArchiveError: Error, CustomStringConvertible, Equatable {
    /// The model holds a layer the archive cannot describe (a custom layer, or an RNN of a custom cell),
    /// or the weight format cannot name it; `typeName` is the layer's ``Layer/typeName``.
    case unsupportedLayer(typeName: String)
    /// A file of the model directory does not exist.
    case missingFile(path: String)
    /// A file exists but cannot be read.
    case unreadableFile(path: String, reason: String)
    /// The model directory cannot be created.
    case cannotCreateDirectory(path: String, reason: String)
    /// `model.json` is not valid JSON, lacks a field, has a field of the wrong type or out of range, or
    /// describes layers that do not fit together; `reason` says where (`layers[1].cell.hiddenSize`) and what.
    case invalidDescription(file: String, reason: String)
    /// `model.json` was written by a format version this build cannot read.
    case unsupportedFormatVersion(file: String, version: Int, supported: Int)
    /// A layer `type` or cell `kind` in `model.json` is not one the archive knows.
    case unknownLayerKind(file: String, kind: String, location: String)
    /// `model.safetensors` is not the file `model.json` was saved with (its CRC-32 differs from the recorded one),
    /// as after a save interrupted between its two files, or a weights file replaced by hand.
    case weightsChecksumMismatch(file: String, recorded: String, computed: String)
    /// An imported weights file holds tensors the model has no place for.
    case unexpectedTensors(file: String, names: [String])

    /// A sentence naming the file and the problem.
    public var description: String {
        switch self {
        case .unsupportedLayer(let typeName):
            "\(typeName) cannot be saved or named: the model format and the PyTorch names cover Dense, Dropout, "
                + "Embedding and the built-in recurrent cells, alone, stacked or bidirectional (PyTorch has no "
                + "bidirectional stack)"
        case .missingFile(let path): "\(path): no such file"
        case .unreadableFile(let path, let reason): "\(path): cannot be read: \(reason)"
        case .cannotCreateDirectory(let path, let reason): "\(path): cannot create the model directory: \(reason)"
        case .invalidDescription(let file, let reason): "\(file): \(reason)"
        case .unsupportedFormatVersion(let file, let version, let supported):
            "\(file): format version \(version) is not supported (this build reads version \(supported))"
        case .unknownLayerKind(let file, let kind, let location): "\(file): \(location): unknown kind '\(kind)'"
        case .weightsChecksumMismatch(let file, let recorded, let computed):
            "\(file): CRC-32 \(computed) differs from \(recorded) recorded in model.json: the weights belong to another "
                + "save (was a save interrupted, or the file replaced?)"
        case .unexpectedTensors(let file, let names):
            "\(file): the model has no place for " + names.map { "'\($0)'" }.joined(separator: ", ")
        }
    }
}

// MARK: - The model description

/// The contents of `model.json`.
struct ModelDescription: Equatable {
    /// The value of the `format` field, which marks the file as an Unroll model description.
    static let format = "unroll.sequential"
    /// The version this build writes and reads.
    static let formatVersion = 1

    var name: String
    var inputShape: [Int]
    var layers: [LayerConfiguration]
    var loss: String?
    /// The CRC-32 of the whole `model.safetensors` file (8 lowercase hexadecimal digits), if recorded.
    var weightsCRC32: String?

    enum Key: String, CodingKey {
        case format, formatVersion, name, inputShape, layers, loss, weightsCRC32
    }

    /// The two fields read before anything else, so a newer file is reported as such rather than as malformed.
    struct Header: Decodable {
        var format: String?
        var formatVersion: Double?
    }

    /// Reads and checks the description at `url`.
    static func read(from url: URL) throws -> ModelDescription {
        let data = try readFile(url)
        // Checked first because the decoder accepts some text that is not JSON (a trailing comma, a leading zero).
        if let syntaxError = JSONSyntaxCheck.firstError(in: data) {
            throw ModelArchiveError.invalidDescription(file: url.path, reason: "not valid JSON: \(syntaxError)")
        }
        let decoder = JSONDecoder()
        do {
            let header = try decoder.decode(Header.self, from: data)
            guard header.format == format else {
                let found = header.format.map { "'\($0)'" } ?? "missing"
                throw ModelArchiveError.invalidDescription(
                    file: url.path, reason: "not an Unroll model description: format is \(found), expected '\(format)'")
            }
            guard let version = header.formatVersion else {
                throw ModelArchiveError.invalidDescription(file: url.path, reason: "formatVersion is missing")
            }
            guard version.rounded() == version, abs(version) < 1e15 else {
                throw ModelArchiveError.invalidDescription(
                    file: url.path, reason: "formatVersion: \(describeNumber(version)) is not a whole number")
            }
            guard Int(version) == formatVersion else {
                throw ModelArchiveError.unsupportedFormatVersion(file: url.path, version: Int(version), supported: formatVersion)
            }
            return try decoder.decode(ModelDescription.self, from: data)
        } catch let error as DecodingError {
            throw ModelArchiveError.invalidDescription(file: url.path, reason: explain(error))
        } catch let error as UnknownKindError {
            throw ModelArchiveError.unknownLayerKind(file: url.path, kind: error.kind, location: error.location)
        }
    }

    /// Returns the JSON text, checked to read back as the same description, so `save` never writes a file
    /// that `load` would refuse.
    func encoded(file: String) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(self)
            guard try JSONDecoder().decode(ModelDescription.self, from: data) == self else {
                throw ModelArchiveError.invalidDescription(file: file, reason: "the description does not read back as written")
            }
            return data
        } catch let error as DecodingError {
            throw ModelArchiveError.invalidDescription(file: file, reason: "the model cannot be described: \(explain(error))")
        } catch let error as EncodingError {
            throw ModelArchiveError.invalidDescription(file: file, reason: "the model cannot be described: \(error)")
        }
    }

    /// The number of parameter scalars the layers will allocate, or `nil` when it overflows `Int`.
    var parameterScalarCount: Int? {
        var total: Int? = 0
        var shape = inputShape
        for layer in layers {
            let (count, next) = layer.parameterScalarCount(inputShape: shape)
            total = checkedSum(total, count)
            shape = next
        }
        return total
    }
}

extension ModelDescription: Codable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        name = try container.decode(String.self, forKey: .name)
        let shape = try container.decode([Double].self, forKey: .inputShape)
        guard (1...ArchiveLimits.maximumRank).contains(shape.count),
              shape.allSatisfy({ $0.rounded() == $0 && $0 >= 1 && $0 <= Double(ArchiveLimits.maximumSize) }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .inputShape, in: container,
                debugDescription: "[\(shape.map(describeNumber).joined(separator: ", "))] is not a shape of "
                    + "1...\(ArchiveLimits.maximumRank) sizes in 1...\(ArchiveLimits.maximumSize)")
        }
        inputShape = shape.map { Int($0) }
        layers = try container.decode([LayerConfiguration].self, forKey: .layers)
        guard (1...ArchiveLimits.maximumLayerCount).contains(layers.count) else {
            throw DecodingError.dataCorruptedError(
                forKey: .layers, in: container,
                debugDescription: "a model needs 1...\(ArchiveLimits.maximumLayerCount) layers, got \(layers.count)")
        }
        loss = try container.decodeIfPresent(String.self, forKey: .loss)
        weightsCRC32 = try container.decodeIfPresent(String.self, forKey: .weightsCRC32)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(Self.format, forKey: .format)
        try container.encode(Self.formatVersion, forKey: .formatVersion)
        try container.encode(name, forKey: .name)
        try container.encode(inputShape, forKey: .inputShape)
        try container.encode(layers, forKey: .layers)
        try container.encodeIfPresent(loss, forKey: .loss)
        try container.encodeIfPresent(weightsCRC32, forKey: .weightsCRC32)
    }
}

/// Returns where a decoding error is and what is wrong.
private func explain(_ error: DecodingError) -> String {
    switch error {
    case .dataCorrupted(let context) where context.codingPath.isEmpty:
        // Syntax was checked before decoding, so this is a number beyond Double's range or text that is not UTF-8.
        return "not valid JSON (a number out of range, or text that is not UTF-8): \(context.debugDescription)"
    case .dataCorrupted(let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "\(describePath(context.codingPath)): \(context.debugDescription)"
    case .keyNotFound(let key, let context):
        return "\(describePath(context.codingPath + [key])) is missing"
    @unknown default:
        return "\(error)"
    }
}

/// Returns the bytes of the file at `url`, or throws ``ModelArchiveError/missingFile(path:)`` or
/// ``ModelArchiveError/unreadableFile(path:reason:)``.
private func readFile(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw ModelArchiveError.missingFile(path: url.path) }
    do {
        return try Data(contentsOf: url, options: .mappedIfSafe)
    } catch {
        throw ModelArchiveError.unreadableFile(path: url.path, reason: error.localizedDescription)
    }
}

private func hexadecimal(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}

// MARK: - Saving and loading

extension Sequential {
    /// The file of a model directory that holds the architecture.
    static let descriptionFileName = "model.json"
    /// The file of a model directory that holds the weights.
    static let weightsFileName = "model.safetensors"

    /// Saves the model, architecture and weights, to a directory (created if needed) that
    /// ``load(from:)`` reads back into a model with bit-identical predictions.
    ///
    /// The directory holds two files, each replaced atomically (see ``writeAtomically(_:to:)``), the weights first:
    /// - `model.safetensors`: every parameter named as in ``namedParameters`` (`lstm/kernel`), `F32`.
    /// - `model.json`: the architecture, for example
    ///   ```json
    ///   { "format": "unroll.sequential", "formatVersion": 1, "name": "sequential", "inputShape": [5, 4],
    ///     "layers": [
    ///       { "type": "rnn", "cell": { "kind": "lstm", "hiddenSize": 6, "unitForgetBias": true },
    ///         "returnSequences": true, "goBackwards": false, "isStateful": false },
    ///       { "type": "bidirectional", "mergeMode": "concatenate", "layer": { "cell": { "kind": "gru",
    ///         "hiddenSize": 3, "resetAfter": true }, "returnSequences": false, "goBackwards": false, "isStateful": false } },
    ///       { "type": "dropout", "rate": 0.2 },
    ///       { "type": "dense", "outputSize": 1, "activation": "linear", "usesBias": true } ],
    ///     "loss": "mean_squared_error", "weightsCRC32": "1c291ca3" }
    ///   ```
    ///   Layer `type`s: `dense` (`outputSize`, `activation`, `usesBias`), `dropout` (`rate`), `embedding`
    ///   (`vocabularySize`, `outputSize`), `rnn` (`cell`, `returnSequences`, `goBackwards`, `isStateful`) and
    ///   `bidirectional` (`mergeMode`: `concatenate`, `sum`, `multiply` or `average`; `layer`: an `rnn`'s fields).
    ///   Cell `kind`s: `lstm` (`hiddenSize`, `unitForgetBias`), `gru` (`hiddenSize`, `resetAfter`), `simple_rnn`
    ///   (`hiddenSize`, `activation`), `peephole_lstm` (`hiddenSize`), `indrnn` (`hiddenSize`, `recurrentBound`,
    ///   `null` when unbounded) and `stacked` (`cells`: cells of one kind, lowest first). `loss` is the compiled
    ///   loss's name, for the reader only: a loaded model is not compiled. `weightsCRC32` is the CRC-32 of the
    ///   whole weights file, which ties the two files together.
    ///
    /// Neither optimizer state nor a stateful layer's carried state is saved.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer the format cannot describe (a custom
    ///   layer or cell), ``TrainingError`` when the layers do not fit together, ``AtomicWriteError`` when a file
    ///   cannot be written.
    public func save(to directory: URL) throws {
        try save(to: directory, beforeRename: { _ in })
    }

    /// ``save(to:)`` with a hook run before each file's rename (tests interrupt a save there).
    func save(to directory: URL, beforeRename: (URL) throws -> Void) throws {
        _ = try layerShapes()
        guard let inputShape else { throw TrainingError.missingInputShape(layer: layers.first?.typeName ?? "model") }
        let configurations = try layers.map { layer in
            guard let layer = layer as? any ArchivableLayer else {
                throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
            }
            return try layer.archivedConfiguration()
        }
        var tensors: [String: Tensor] = [:]
        for (name, parameter) in namedParameters { tensors[name] = parameter.value }
        let weights = SafeTensors.encode(tensors)

        let descriptionURL = directory.appendingPathComponent(Self.descriptionFileName)
        let description = ModelDescription(name: name, inputShape: inputShape, layers: configurations, loss: loss?.name,
                                           weightsCRC32: hexadecimal(CRC32.checksum(of: weights)))
        let json = try description.encoded(file: descriptionURL.path)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelArchiveError.cannotCreateDirectory(path: directory.path, reason: error.localizedDescription)
        }
        // Weights first: until model.json is replaced, its recorded checksum rejects the new weights rather than
        // pairing them with the old architecture.
        try writeAtomically(weights, to: directory.appendingPathComponent(Self.weightsFileName), beforeRename: beforeRename)
        try writeAtomically(json, to: descriptionURL, beforeRename: beforeRename)
    }

    /// Loads a model saved by ``save(to:)``: rebuilds its layers from `model.json` and sets their weights
    /// from `model.safetensors`. The model is not compiled.
    ///
    /// Every number in `model.json` is range-checked, and the parameter count it implies is checked against
    /// the weights file, before any layer is created; hostile files make it throw, never crash.
    ///
    /// - Throws: ``ModelArchiveError`` (a missing file, an invalid, newer or unknown description, weights from
    ///   another save), ``SafeTensorsError`` (a truncated or corrupted weights file) or ``WeightError`` (a tensor
    ///   missing or of the wrong shape, named).
    public static func load(from directory: URL) throws -> Sequential {
        let descriptionURL = directory.appendingPathComponent(descriptionFileName)
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        let description = try ModelDescription.read(from: descriptionURL)
        let weights = try readFile(weightsURL)
        let (tensors, _) = try SafeTensors.decode(weights, source: weightsURL.path)
        if let recorded = description.weightsCRC32 {
            let computed = hexadecimal(CRC32.checksum(of: weights))
            guard computed == recorded.lowercased() else {
                throw ModelArchiveError.weightsChecksumMismatch(file: weightsURL.path, recorded: recorded, computed: computed)
            }
        }
        let storedScalarCount = tensors.values.reduce(0) { $0 + $1.count }
        guard let described = description.parameterScalarCount,
              described <= max(storedScalarCount, ArchiveLimits.scalarAllowance) else {
            let count = description.parameterScalarCount.map { "\($0)" } ?? "more than \(Int.max)"
            throw ModelArchiveError.invalidDescription(
                file: descriptionURL.path,
                reason: "the layers need \(count) parameter scalars but \(weightsFileName) holds \(storedScalarCount)")
        }
        let model = Sequential(try description.layers.map { try $0.makeLayer() }, inputShape: description.inputShape,
                               name: description.name)
        do {
            _ = try model.layerShapes()
        } catch let error as TrainingError {
            throw ModelArchiveError.invalidDescription(file: descriptionURL.path, reason: error.description)
        }
        try model.setWeights(named: tensors, source: weightsURL.path)
        return model
    }
}

// MARK: - PyTorch and Keras weights

/// Access to the parts of generic layers that weight naming needs, whatever their cell type.
protocol RecurrentLayerAccess: Layer {
    /// The cell run at every step.
    var anyCell: any RecurrentCell { get }
}

/// Access to both directions of a ``Bidirectional``, whatever its cell type.
protocol BidirectionalAccess: Layer {
    /// The forward and backward layers.
    var directions: (forward: any RecurrentLayerAccess, backward: any RecurrentLayerAccess) { get }
}

/// Access to the cells of a ``StackedCells``, whatever their type.
protocol CellStack {
    /// The cells, lowest first.
    var stackedCells: [any RecurrentCell] { get }
}

extension RNN: RecurrentLayerAccess {
    var anyCell: any RecurrentCell { cell }
}

extension Bidirectional: BidirectionalAccess {
    var directions: (forward: any RecurrentLayerAccess, backward: any RecurrentLayerAccess) { (forward, backward) }
}

extension StackedCells: CellStack {
    var stackedCells: [any RecurrentCell] { cells }
}

/// Some of a layer's weights as an outside format names and lays them out.
struct ExternalWeights {
    /// The current values under their full names, in the format's layout (the expected names and shapes).
    var tensors: [String: Tensor]
    /// Sets the parameters from a dictionary holding every name of ``tensors`` with its shape.
    var assign: ([String: Tensor]) throws -> Void
}

extension Sequential {
    /// Returns the weights as a PyTorch state dict: `"<layer name>.<PyTorch name>"`, PyTorch's layouts.
    ///
    /// Layer names are ``layerNames`` (`lstm`, `lstm_1`, `bidirectional`, `dense`). Per layer:
    /// - `Dense` (a `torch.nn.Linear`): `dense.weight [outputSize, inputSize]`, `dense.bias [outputSize]`.
    /// - `Embedding` (a `torch.nn.Embedding`): `embedding.weight [vocabularySize, outputSize]`.
    /// - `LSTM`, `GRU`, `SimpleRNN` (`torch.nn.LSTM`, `GRU`, `RNN`): `lstm.weight_ih_l0 [gates·hidden, input]`,
    ///   `lstm.weight_hh_l0 [gates·hidden, hidden]`, `lstm.bias_ih_l0`, `lstm.bias_hh_l0 [gates·hidden]`, gates in
    ///   PyTorch's order (LSTM i, f, g, o; GRU r, z, n). Unroll keeps one fused bias, exported as `bias_ih` with
    ///   `bias_hh` zero; on import the two are added. A GRU with `resetAfter: false` has no PyTorch twin and uses
    ///   one `bias_l0`.
    /// - `PeepholeLSTM`: the LSTM names plus `peephole_i_l0`, `peephole_f_l0`, `peephole_o_l0 [hidden]`.
    /// - `IndRNN`: `weight_ih_l0 [hidden, input]`, `recurrent_weight_l0 [hidden]`, `bias_l0 [hidden]`.
    /// - A stack of cells: cell `k` as layer `k` of a multi-layer PyTorch RNN (`_l0`, `_l1`, ...).
    /// - `Bidirectional`: the forward layer's names (`bidirectional.weight_ih_l0`), the backward layer's with
    ///   `_reverse` (`bidirectional.weight_ih_l0_reverse`).
    /// - `Dropout`: nothing.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer with no PyTorch names (a custom
    ///   layer or cell, a bidirectional stack), ``TrainingError`` when the layers cannot be built.
    public func pyTorchStateDict() throws -> [String: Tensor] {
        try exportWeights(pyTorchWeights())
    }

    /// Sets every parameter from a PyTorch state dict named as in ``pyTorchStateDict()``, converting layouts.
    ///
    /// All names and shapes are checked before any parameter changes, so a failed import leaves the model as it was.
    ///
    /// - Parameter source: names the dictionary in errors.
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape (PyTorch names and shapes),
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors the model has no place for,
    ///   ``ModelArchiveError/unsupportedLayer(typeName:)``.
    public func setPyTorchWeights(_ stateDict: [String: Tensor], source: String = "state dict") throws {
        try importWeights(pyTorchWeights(), from: stateDict, source: source)
    }

    /// Reads a safetensors file holding a PyTorch state dict (`safetensors.torch.save_file(model.state_dict(), ...)`
    /// of a module whose submodules carry the Unroll layer names) and sets every parameter from it; see
    /// ``pyTorchStateDict()`` for the names and ``setPyTorchWeights(_:source:)`` for the checks.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable or corrupted file, else as ``setPyTorchWeights(_:source:)``.
    public func loadPyTorchWeights(from url: URL) throws {
        let (tensors, _) = try SafeTensors.read(from: url)
        try setPyTorchWeights(tensors, source: url.path)
    }

    /// Returns the weights named as Keras names them, `"<layer name>/<Keras weight name>"`, in Keras' layouts
    /// (which are Unroll's own).
    ///
    /// Layer names are ``layerNames``. Per layer: `dense/kernel [input, output]`, `dense/bias`;
    /// `embedding/embeddings`; `lstm/kernel [input, gates·hidden]`, `lstm/recurrent_kernel [hidden, gates·hidden]`,
    /// `lstm/bias` (gates in Keras' order: LSTM i, f, c, o; GRU z, r, h; a `resetAfter` GRU's bias is
    /// `[2, 3·hidden]`); `peephole_lstm/input_gate_peephole_weights` and its forget and output twins;
    /// `indrnn/recurrent_kernel [hidden]`. A bidirectional layer nests each direction under the wrapped layer's
    /// name, as Keras does: `bidirectional/forward_lstm/kernel`, `bidirectional/backward_lstm/kernel`. A stack of
    /// cells nests cell `k` as `stacked_lstm/cell_0/kernel`, `stacked_lstm/cell_1/kernel`. Any other layer uses its
    /// parameters' own names (`custom/weight`), a repeated name getting `_1`, `_2`.
    ///
    /// - Throws: ``TrainingError`` when the layers cannot be built.
    public func kerasWeights() throws -> [String: Tensor] {
        try exportWeights(kerasExternalWeights())
    }

    /// Sets every parameter from tensors named as in ``kerasWeights()``, checking all names and shapes before
    /// any parameter changes.
    ///
    /// - Parameter source: names the dictionary in errors.
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape,
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors the model has no place for.
    public func setKerasWeights(_ tensors: [String: Tensor], source: String = "weights") throws {
        try importWeights(kerasExternalWeights(), from: tensors, source: source)
    }

    /// Reads a safetensors file of Keras-named weights (see ``kerasWeights()``) and sets every parameter from it.
    ///
    /// - Throws: ``SafeTensorsError`` for an unreadable or corrupted file, else as ``setKerasWeights(_:source:)``.
    public func loadKerasWeights(from url: URL) throws {
        let (tensors, _) = try SafeTensors.read(from: url)
        try setKerasWeights(tensors, source: url.path)
    }

    private func exportWeights(_ groups: [ExternalWeights]) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for group in groups { result.merge(group.tensors) { first, _ in first } }
        return result
    }

    private func importWeights(_ groups: [ExternalWeights], from tensors: [String: Tensor], source: String) throws {
        var expected = Set<String>()
        for group in groups {
            for (name, tensor) in group.tensors.sorted(by: { $0.key < $1.key }) {
                expected.insert(name)
                guard let given = tensors[name] else { throw WeightError.missing(name: "\(name) (in \(source))") }
                guard given.shape == tensor.shape else {
                    throw WeightError.shapeMismatch(name: "\(name) (in \(source))", expected: tensor.shape, actual: given.shape)
                }
            }
        }
        let unexpected = tensors.keys.filter { !expected.contains($0) }.sorted()
        guard unexpected.isEmpty else { throw ModelArchiveError.unexpectedTensors(file: source, names: unexpected) }
        for group in groups { try group.assign(tensors) }
    }

    private func pyTorchWeights() throws -> [ExternalWeights] {
        _ = try layerShapes()
        return try zip(layers, layerNames).flatMap { layer, name in try Self.pyTorchWeights(of: layer, prefix: name + ".") }
    }

    private static func pyTorchWeights(of layer: any Layer, prefix: String) throws -> [ExternalWeights] {
        switch layer {
        case let dense as Dense:
            guard let kernel = dense.kernel else { throw WeightError.notBuilt(layer: dense.typeName) }
            var tensors = [prefix + "weight": kernel.value.transposed()]
            if let bias = dense.bias { tensors[prefix + "bias"] = bias.value }
            return [ExternalWeights(tensors: tensors) { source in
                if let weight = source[prefix + "weight"] { kernel.value = weight.transposed() }
                if let bias = dense.bias, let value = source[prefix + "bias"] { bias.value = value }
            }]
        case let embedding as Embedding:
            return [ExternalWeights(tensors: [prefix + "weight": embedding.table.value]) { source in
                if let value = source[prefix + "weight"] { embedding.table.value = value }
            }]
        case let bidirectional as any BidirectionalAccess:
            let (forward, backward) = bidirectional.directions
            guard let forwardCell = forward.anyCell as? any PyTorchConvertible,
                  let backwardCell = backward.anyCell as? any PyTorchConvertible else {
                throw ModelArchiveError.unsupportedLayer(typeName: "\(layer.typeName) of \(forward.typeName)")
            }
            return [cellWeights(forwardCell, prefix: prefix, suffix: "_l0"),
                    cellWeights(backwardCell, prefix: prefix, suffix: "_l0_reverse")]
        case let recurrent as any RecurrentLayerAccess:
            if let cell = recurrent.anyCell as? any PyTorchConvertible {
                return [cellWeights(cell, prefix: prefix, suffix: "_l0")]
            }
            if let stack = recurrent.anyCell as? any CellStack {
                return try stack.stackedCells.enumerated().map { index, cell in
                    guard let cell = cell as? any PyTorchConvertible else {
                        throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
                    }
                    return cellWeights(cell, prefix: prefix, suffix: "_l\(index)")
                }
            }
            throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
        default:
            guard layer.parameters.isEmpty else { throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName) }
            return []
        }
    }

    private static func cellWeights(_ cell: any PyTorchConvertible, prefix: String, suffix: String) -> ExternalWeights {
        let own = cell.pyTorchStateDict(suffix: suffix)
        return ExternalWeights(tensors: Dictionary(uniqueKeysWithValues: own.map { (prefix + $0.key, $0.value) })) { source in
            var unprefixed: [String: Tensor] = [:]
            for name in own.keys { unprefixed[name] = source[prefix + name] }
            try cell.loadPyTorch(unprefixed, suffix: suffix)
        }
    }

    private func kerasExternalWeights() throws -> [ExternalWeights] {
        _ = try layerShapes()
        return zip(layers, layerNames).flatMap { layer, name in
            Self.kerasParameters(of: layer, path: name).map { name, parameter in
                ExternalWeights(tensors: [name: parameter.value]) { source in
                    if let value = source[name] { parameter.value = value }
                }
            }
        }
    }

    private static func kerasParameters(of layer: any Layer, path: String) -> [(String, Parameter)] {
        if let bidirectional = layer as? any BidirectionalAccess {
            let (forward, backward) = bidirectional.directions
            let inner = snakeCase(forward.typeName)
            return kerasParameters(of: forward, path: "\(path)/forward_\(inner)")
                + kerasParameters(of: backward, path: "\(path)/backward_\(inner)")
        }
        if let recurrent = layer as? any RecurrentLayerAccess, let stack = recurrent.anyCell as? any CellStack {
            return stack.stackedCells.enumerated().flatMap { index, cell in
                uniquelyNamed(cell.parameters, path: "\(path)/cell_\(index)")
            }
        }
        return uniquelyNamed(layer.parameters, path: path)
    }

    /// Names parameters `path/name`, a repeated name getting `_1`, `_2` as in ``namedParameters``.
    private static func uniquelyNamed(_ parameters: [Parameter], path: String) -> [(String, Parameter)] {
        var seen: [String: Int] = [:]
        return parameters.map { parameter in
            let count = seen[parameter.name, default: 0]
            seen[parameter.name] = count + 1
            return ("\(path)/\(parameter.name)" + (count == 0 ? "" : "_\(count)"), parameter)
        }
    }
}
