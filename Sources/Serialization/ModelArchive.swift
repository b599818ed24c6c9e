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
    /// A file of the model directory differs from the size and CRC-32 its manifest records.
    case checksumMismatch(file: String, recorded: String, computed: String)
    /// A layer of a functional model cannot be saved (a `Lambda` closure, a custom layer or cell, or a layer wired
    /// as the format cannot describe); `name` is its name in the model (``Model/layerNames``), `typeName` its
    /// ``Layer/typeName``, `reason` why.
    case unsavableLayer(name: String, typeName: String, reason: String)
    /// A file of the model directory has no entry in the manifest (or, in a directory saved before manifests,
    /// `model.json` records no `weightsCRC32`), so it cannot be checked.
    case missingChecksum(file: String, manifest: String)

    /// A sentence naming the file and the problem.
    public var description: String {
        switch self {
        case .unsupportedLayer(let typeName):
            "\(typeName) is not supported: the model format covers Dense, Dropout, Embedding, EchoStateNetwork, the "
                + "built-in recurrent cells (alone, stacked or bidirectional) and the wiring layers (Concatenate, Add, "
                + "Multiply, RepeatVector, TimeDistributed, Masking); PyTorch names cover the recurrent layers, Dense and "
                + "Embedding but EchoStateNetwork and bidirectional stacks"
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
        case .checksumMismatch(let file, let recorded, let computed):
            "\(file): \(computed), but the manifest records \(recorded): the file was changed after the save"
        case .unsavableLayer(let name, let typeName, let reason): "layer '\(name)' (\(typeName)) cannot be saved: \(reason)"
        case .missingChecksum(let file, let manifest):
            "\(file): \(manifest) records no checksum for it, so it cannot be trusted"
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

    /// Reads and checks the description at `url`.
    static func read(from url: URL) throws -> ModelDescription {
        try read(data: try readFile(url), path: url)
    }

    /// Checks the description `data`, read from `url`.
    static func read(data: Data, path url: URL) throws -> ModelDescription {
        try readDescription(data, path: url) { root in
            try checkHeader(root, format: format, version: formatVersion, file: url.path)
            return try ModelDescription(json: root)
        }
    }

    /// The description as JSON.
    var json: JSON {
        var object = JSONObject(["format": .string(Self.format), "formatVersion": jsonNumber(Self.formatVersion),
                                 "name": .string(name), "inputShape": .array(inputShape.map(jsonNumber)),
                                 "layers": .array(layers.map(\.json))])
        object["loss"] = loss.map(JSON.string)
        object["weightsCRC32"] = weightsCRC32.map(JSON.string)
        return .object(object)
    }

    /// Returns the JSON text, checked to read back as the same description, so `save` never writes a file
    /// that `load` would refuse.
    func encoded(file: String) throws -> Data {
        try encodedDescription(json, file: file) { try ModelDescription(json: $0) == self }
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

extension ModelDescription {
    /// Reads the fields below the header.
    init(json root: JSONField) throws {
        name = try root.field("name").string()
        inputShape = try root.field("inputShape").shape()
        let list = try root.field("layers")
        layers = try list.elements().map(LayerConfiguration.init(json:))
        guard (1...ArchiveLimits.maximumLayerCount).contains(layers.count) else {
            throw InvalidFieldError(list, "a model needs 1...\(ArchiveLimits.maximumLayerCount) layers, got \(layers.count)")
        }
        loss = try root.optionalField("loss")?.string()
        weightsCRC32 = try root.optionalField("weightsCRC32")?.string()
    }
}

/// Parses a model description and runs `read` on it, turning every problem into a ``ModelArchiveError`` naming
/// the file and where in it the problem is (`layers[1].cell.hiddenSize`).
func readDescription<Description>(_ data: Data, path url: URL,
                                  _ read: (JSONField) throws -> Description) throws -> Description {
    let root: JSON
    do {
        root = try JSON.parse(data, limits: JSON.Limits(maximumDepth: 512))
    } catch let JSONError.syntax(_, line, column, message) {
        throw ModelArchiveError.invalidDescription(file: url.path,
                                                   reason: "not valid JSON: line \(line), column \(column): \(message)")
    } catch let JSONError.duplicateKey(key, path, _, line, column) {
        throw ModelArchiveError.invalidDescription(
            file: url.path,
            reason: "not valid JSON: line \(line), column \(column): \(JSONError.duplicateKeyMessage(key: key, path: path))")
    } catch {
        throw ModelArchiveError.invalidDescription(file: url.path, reason: "not valid JSON: \(error)")
    }
    do {
        return try read(JSONField(root))
    } catch let error as JSONError {
        throw ModelArchiveError.invalidDescription(file: url.path, reason: error.description)
    } catch let error as InvalidFieldError {
        throw ModelArchiveError.invalidDescription(file: url.path, reason: error.description)
    } catch let error as UnknownKindError {
        throw ModelArchiveError.unknownLayerKind(file: url.path, kind: error.kind, location: error.location)
    }
}

/// Throws unless `root` is a model description of `format` at `version`, checked before anything else so a newer
/// file is reported as such rather than as malformed.
func checkHeader(_ root: JSONField, format: String, version: Int, file: String) throws {
    let found = try root.optionalField("format")
    let kinds = [ModelDescription.format: ("a Sequential", "Sequential.load(from:)"),
                 FunctionalDescription.format: ("a functional", "Model.load(from:)")]
    if case .string(let other)? = found?.value, other != format, let (kind, loader) = kinds[other] {
        throw ModelArchiveError.invalidDescription(file: file, reason: "\(kind) model (format '\(other)'): load it with \(loader)")
    }
    guard case .string(format)? = found?.value else {
        let description = found.map { field in (try? field.string()).map { "'\($0)'" } ?? field.value.summary } ?? "missing"
        throw ModelArchiveError.invalidDescription(
            file: file, reason: "not an Unroll model description: format is \(description), expected '\(format)'")
    }
    guard let versionField = try root.optionalField("formatVersion") else {
        throw ModelArchiveError.invalidDescription(file: file, reason: "formatVersion is missing")
    }
    let number = try versionField.double()
    guard number.rounded() == number, abs(number) < 1e15 else {
        throw ModelArchiveError.invalidDescription(file: file, reason: "formatVersion: \(JSON.format(number)) is not a whole number")
    }
    guard Int(number) == version else {
        throw ModelArchiveError.unsupportedFormatVersion(file: file, version: Int(number), supported: version)
    }
}

/// Returns `json` as pretty-printed text, checked with `readsBack` to read back as the same description, so a save
/// never writes a file that a load would refuse.
func encodedDescription(_ json: JSON, file: String, readsBack: (JSONField) throws -> Bool) throws -> Data {
    let text = json.serialized(pretty: true) + "\n"
    do {
        guard try readsBack(JSONField(try JSON.parse(text))) else {
            throw ModelArchiveError.invalidDescription(file: file, reason: "the description does not read back as written")
        }
    } catch let error as ModelArchiveError {
        throw error
    } catch {
        throw ModelArchiveError.invalidDescription(file: file, reason: "the model cannot be described: \(error)")
    }
    return Data(text.utf8)
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


// MARK: - The model directory

/// A saved model: a directory holding `model.json` (the architecture, a ``ModelDescription``) beside
/// `model.safetensors` (the weights) and `manifest.json` (every other file's size and CRC-32), replaced as a whole
/// by each save.
///
/// Works on a list of layers and an input shape, so it knows nothing of the model class that holds them.
package enum ModelDirectory {
    /// The file of a model directory that holds the architecture.
    package static let descriptionFileName = "model.json"
    /// The file of a model directory that holds the weights.
    package static let weightsFileName = "model.safetensors"

    /// The files a save of a model directory may replace: its own and those tools add beside it.
    package static let knownFileNames: Set<String> = [descriptionFileName, weightsFileName, ModelManifest.fileName,
                                                       "preprocessing.json", "loss.svg", "vocabulary.json"]

    /// Writes a model directory, replacing any previous one atomically as a whole: `model.safetensors`,
    /// `model.json`, `additionalFiles` (a tool's files, such as the command line's `preprocessing.json`) and
    /// `manifest.json`, which records every other file's size and CRC-32.
    ///
    /// The layers must be built (their weights exist) and fit together from `inputShape`; `weights` holds every
    /// parameter under its saved name. `beforeSwap` runs once the new directory is complete, before it replaces the
    /// old one (tests interrupt a save there).
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer the format cannot describe,
    ///   ``AtomicWriteError`` when the directory cannot be written or the destination is not a model directory.
    package static func write(name: String, inputShape: [Int], layers: [any Layer], weights tensors: [String: Tensor],
                              loss: String?, additionalFiles: [(name: String, data: Data)] = [], to directory: URL,
                              swap: DirectorySwap = .exchangeIfAvailable, beforeSwap: (URL) throws -> Void) throws {
        let configurations = try layers.map { layer in
            guard let layer = layer as? any ArchivableLayer else {
                throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
            }
            return try layer.archivedConfiguration()
        }
        try write(weights: tensors, additionalFiles: additionalFiles, to: directory, swap: swap, beforeSwap: beforeSwap) {
            try ModelDescription(name: name, inputShape: inputShape, layers: configurations, loss: loss, weightsCRC32: $0)
                .encoded(file: $1)
        }
    }

    /// Writes the weights, the description `describe` returns for the weights file's CRC-32 and the path of
    /// `model.json`, the additional files and the manifest, replacing the directory as a whole.
    static func write(weights tensors: [String: Tensor], additionalFiles: [(name: String, data: Data)], to directory: URL,
                      swap: DirectorySwap, beforeSwap: (URL) throws -> Void,
                      describe: (_ weightsCRC32: String, _ file: String) throws -> Data) throws {
        let weights = SafeTensors.encode(tensors)
        let descriptionURL = directory.appendingPathComponent(descriptionFileName)
        let description = try describe(hexadecimal(CRC32.checksum(of: weights)), descriptionURL.path)
        let files = [(weightsFileName, weights), (descriptionFileName, description)] + additionalFiles
        let manifest = ModelManifest(files: files)
        let names = Set(files.map(\.name))
        try replaceDirectoryAtomically(at: directory, with: files + [(ModelManifest.fileName, manifest.encoded())],
                                       mayDiscard: { knownFileNames.contains($0) || names.contains($0) },
                                       swap: swap, beforeSwap: beforeSwap)
    }

    /// What a model directory holds: the layers created again (unbuilt, weights not yet set) and the weights by name.
    package struct Contents {
        /// The model's name.
        package var name: String
        /// The model's input shape (without the batch axis).
        package var inputShape: [Int]
        /// The layers, first to last, created from their configurations but not built.
        package var layers: [any Layer]
        /// Every tensor of the weights file, by name.
        package var weights: [String: Tensor]
        /// The path of `model.json`, for errors about the architecture.
        package var descriptionPath: String
        /// The path of `model.safetensors`, for errors about the weights.
        package var weightsPath: String
    }

    /// Reads a model directory written by ``write(name:inputShape:layers:weights:loss:additionalFiles:to:swap:beforeSwap:)``.
    ///
    /// Every number in `model.json` is range-checked, and the parameter count it implies is checked against
    /// the weights file, before any layer is created; hostile files make it throw, never crash.
    ///
    /// - Throws: ``ModelArchiveError`` (a missing file, an invalid, newer or unknown description, weights from
    ///   another save) or ``SafeTensorsError`` (a truncated or corrupted weights file).
    package static func read(from directory: URL) throws -> Contents {
        try read(from: directory, additionalFiles: []).contents
    }

    /// Reads a model directory and the tool files named in `additionalFiles`, all from the same save: every
    /// file is checked against `manifest.json` (a directory saved before manifests must record `weightsCRC32`
    /// in `model.json`, and cannot supply additional files).
    package static func read(from requested: URL, additionalFiles: [String]) throws
        -> (contents: Contents, files: [String: Data]) {
        let (description, tensors, files, descriptionURL, weightsURL) = try read(
            from: requested, additionalFiles: additionalFiles, parse: ModelDescription.read, weightsCRC32: \.weightsCRC32)
        let storedScalarCount = tensors.values.reduce(0) { $0 + $1.count }
        guard let described = description.parameterScalarCount,
              described <= max(storedScalarCount, ArchiveLimits.scalarAllowance) else {
            let count = description.parameterScalarCount.map { "\($0)" } ?? "more than \(Int.max)"
            throw ModelArchiveError.invalidDescription(
                file: descriptionURL.path,
                reason: "the layers need \(count) parameter scalars but \(weightsFileName) holds \(storedScalarCount)")
        }
        return (Contents(name: description.name, inputShape: description.inputShape,
                         layers: try description.layers.map { try $0.makeLayer() }, weights: tensors,
                         descriptionPath: descriptionURL.path, weightsPath: weightsURL.path), files)
    }

    /// Reads the files of a model directory, all from the same save: `model.json` (parsed by `parse`), the weights,
    /// and the tool files named in `additionalFiles`, every file checked against `manifest.json` (a directory saved
    /// before manifests must record `weightsCRC32` in `model.json`, and cannot supply additional files).
    static func read<Description>(from requested: URL, additionalFiles: [String],
                                  parse: (Data, URL) throws -> Description, weightsCRC32: (Description) -> String?) throws
        -> (Description, [String: Tensor], [String: Data], descriptionURL: URL, weightsURL: URL) {
        let directory = resolvedModelDirectory(requested)
        let descriptionURL = directory.appendingPathComponent(descriptionFileName)
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        let manifest = try ModelManifest.read(in: directory)
        let descriptionData = try readModelFile(descriptionURL, limit: 64 << 20)
        try manifest?.verify(descriptionFileName, data: descriptionData, in: directory)
        let description = try parse(descriptionData, descriptionURL)
        let weights = try readModelFile(weightsURL, limit: Int(clamping: ProcessInfo.processInfo.physicalMemory))
        // The file is mapped, not read: decoding checks the header and the layout before it copies any tensor's
        // bytes, so a hostile header fails before the data is read.
        let (tensors, _) = try SafeTensors.decode(weights, source: weightsURL.path)
        if let manifest {
            try manifest.verify(weightsFileName, data: weights, in: directory)
        } else if weightsCRC32(description) == nil {
            throw ModelArchiveError.missingChecksum(file: weightsURL.path, manifest: descriptionURL.path)
        }
        var files: [String: Data] = [:]
        for name in additionalFiles {
            let url = directory.appendingPathComponent(name)
            // Read first, so a directory that lacks the file (one not written by the tool that needs it) is
            // reported as missing it, not as unable to vouch for it.
            let data = try readModelFile(url, limit: 64 << 20)
            guard let manifest else {
                throw ModelArchiveError.missingChecksum(file: url.path,
                                                        manifest: directory.appendingPathComponent(ModelManifest.fileName).path)
            }
            try manifest.verify(name, data: data, in: directory)
            files[name] = data
        }
        if let recorded = weightsCRC32(description) {
            let computed = hexadecimal(CRC32.checksum(of: weights))
            guard computed == recorded.lowercased() else {
                throw ModelArchiveError.weightsChecksumMismatch(file: weightsURL.path, recorded: recorded, computed: computed)
            }
        }
        return (description, tensors, files, descriptionURL, weightsURL)
    }
}
