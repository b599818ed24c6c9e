import Graph
import Layers

// How layer and cell configurations are written to and read from `model.json` through the package's one JSON
// reader and writer, every number range-checked and every problem named by its path in the file.

/// A `type` or `kind` the archive does not know; mapped to ``ModelArchiveError/unknownLayerKind(file:kind:location:)``.
struct UnknownKindError: Error {
    let kind: String
    let location: String
}

/// A field whose value the archive cannot take, for problems ``JSONError`` has no words for (an unknown
/// activation, a stack of mixed kinds); mapped to ``ModelArchiveError/invalidDescription(file:reason:)``.
struct InvalidFieldError: Error, CustomStringConvertible {
    let path: String
    let message: String

    init(_ field: JSONField, _ message: String) {
        path = field.path.isEmpty ? "the top level" : field.path
        self.message = message
    }

    var description: String { "\(path): \(message)" }
}

extension JSONField {
    /// Returns this number as a size in `1...maximumSize`.
    func size() throws -> Int {
        let value = try double()
        guard value.rounded() == value, value >= 1, value <= Double(ArchiveLimits.maximumSize) else {
            throw JSONError.invalidValue(path: path, value: JSON.format(value),
                                         requirement: "a size in 1...\(ArchiveLimits.maximumSize)")
        }
        return Int(value)
    }

    /// Returns the ``Activation`` this string names.
    func activation() throws -> Activation {
        let name = try string()
        guard let activation = Activation(rawValue: name) else {
            let known = Activation.allCases.map(\.rawValue).joined(separator: ", ")
            throw InvalidFieldError(self, "unknown activation '\(name)' (known: \(known))")
        }
        return activation
    }

    /// Returns a size-sized shape: 1...maximumRank sizes in 1...maximumSize.
    func shape() throws -> [Int] {
        let values = try elements().map { try $0.double() }
        guard (1...ArchiveLimits.maximumRank).contains(values.count),
              values.allSatisfy({ $0.rounded() == $0 && $0 >= 1 && $0 <= Double(ArchiveLimits.maximumSize) }) else {
            throw InvalidFieldError(self, "[\(values.map(JSON.format).joined(separator: ", "))] is not a shape of "
                                    + "1...\(ArchiveLimits.maximumRank) sizes in 1...\(ArchiveLimits.maximumSize)")
        }
        return values.map { Int($0) }
    }

    /// Returns this string, which must be the `type` or `kind` of something the archive knows; else throws
    /// ``UnknownKindError`` naming where it is.
    func kind(in known: Set<String>) throws -> String {
        let name = try string()
        guard known.contains(name) else { throw UnknownKindError(kind: name, location: path) }
        return name
    }
}

/// Returns a number of a configuration as JSON: a `Float` in the shortest text that reads back as the same `Float`
/// (`0.2`, not `0.20000000298023224`).
func jsonNumber(_ value: Float) -> JSON { .number(JSONNumber(Double("\(value)") ?? Double(value))) }

/// Returns an integer of a configuration as JSON.
func jsonNumber(_ value: Int) -> JSON { .number(JSONNumber(value)) }

extension CellConfiguration {
    /// Reads a cell object (`{"kind": "lstm", "hiddenSize": 8, ...}`).
    init(json field: JSONField) throws {
        let kinds: Set = ["lstm", "gru", "simple_rnn", "peephole_lstm", "indrnn", "stacked"]
        switch try field.field("kind").kind(in: kinds) {
        case "lstm":
            self = .lstm(hiddenSize: try field.field("hiddenSize").size(),
                         unitForgetBias: try field.field("unitForgetBias").bool())
        case "gru":
            self = .gru(hiddenSize: try field.field("hiddenSize").size(), resetAfter: try field.field("resetAfter").bool())
        case "simple_rnn":
            self = .simpleRNN(hiddenSize: try field.field("hiddenSize").size(),
                              activation: try field.field("activation").activation())
        case "peephole_lstm":
            self = .peepholeLSTM(hiddenSize: try field.field("hiddenSize").size())
        case "indrnn":
            // A negative bound would make the constraint's clamping range empty, which traps.
            let bound = try field.optionalField("recurrentBound")?.float("a finite number ≥ 0") { $0.isFinite && $0 >= 0 }
            self = .indRNN(hiddenSize: try field.field("hiddenSize").size(), recurrentBound: bound)
        default:
            let list = try field.field("cells")
            let cells = try list.elements().map(CellConfiguration.init(json:))
            guard (1...ArchiveLimits.maximumStackedCellCount).contains(cells.count) else {
                throw InvalidFieldError(list, "a stack needs 1...\(ArchiveLimits.maximumStackedCellCount) cells, got \(cells.count)")
            }
            guard cells.allSatisfy({ $0.kind == cells[0].kind }), cells[0].kind != "stacked" else {
                throw InvalidFieldError(list, "a stack holds cells of one kind, not a stack; got \(cells.map(\.kind))")
            }
            self = .stacked(cells)
        }
    }

    /// The cell object.
    var json: JSON {
        var object = JSONObject(["kind": .string(kind)])
        switch self {
        case .lstm(let hiddenSize, let unitForgetBias):
            object["hiddenSize"] = jsonNumber(hiddenSize)
            object["unitForgetBias"] = .bool(unitForgetBias)
        case .gru(let hiddenSize, let resetAfter):
            object["hiddenSize"] = jsonNumber(hiddenSize)
            object["resetAfter"] = .bool(resetAfter)
        case .simpleRNN(let hiddenSize, let activation):
            object["hiddenSize"] = jsonNumber(hiddenSize)
            object["activation"] = .string(activation.rawValue)
        case .peepholeLSTM(let hiddenSize):
            object["hiddenSize"] = jsonNumber(hiddenSize)
        case .indRNN(let hiddenSize, let recurrentBound):
            object["hiddenSize"] = jsonNumber(hiddenSize)
            object["recurrentBound"] = recurrentBound.map(jsonNumber) ?? .null
        case .stacked(let cells):
            object["cells"] = .array(cells.map(\.json))
        }
        return .object(object)
    }
}

extension RecurrentConfiguration {
    /// Reads the fields of a recurrent layer from `field` (a layer object, or a bidirectional layer's `layer`).
    init(json field: JSONField) throws {
        cell = try CellConfiguration(json: try field.field("cell"))
        returnSequences = try field.field("returnSequences").bool()
        goBackwards = try field.field("goBackwards").bool()
        isStateful = try field.field("isStateful").bool()
        let rate = { (key: String) in try field.optionalField(key)?.float("a rate in [0, 1)") { $0 >= 0 && $0 < 1 } ?? 0 }
        dropout = try rate("dropout")
        recurrentDropout = try rate("recurrentDropout")
    }

    /// Adds the fields of a recurrent layer to `object`.
    func write(to object: inout JSONObject) {
        object["cell"] = cell.json
        object["returnSequences"] = .bool(returnSequences)
        object["goBackwards"] = .bool(goBackwards)
        object["isStateful"] = .bool(isStateful)
        if dropout != 0 { object["dropout"] = jsonNumber(dropout) }
        if recurrentDropout != 0 { object["recurrentDropout"] = jsonNumber(recurrentDropout) }
    }
}

extension LayerConfiguration {
    /// Reads a layer object (`{"type": "dense", "outputSize": 1, ...}`).
    init(json field: JSONField) throws {
        let types: Set = ["dense", "dropout", "embedding", "rnn", "bidirectional", "echo_state_network", "concatenate",
                          "add", "multiply", "repeat_vector", "time_distributed", "masking"]
        switch try field.field("type").kind(in: types) {
        case "dense":
            self = .dense(outputSize: try field.field("outputSize").size(),
                          activation: try field.field("activation").activation(),
                          usesBias: try field.field("usesBias").bool())
        case "dropout":
            self = .dropout(rate: try field.field("rate").float("a rate in [0, 1)") { $0 >= 0 && $0 < 1 })
        case "embedding":
            self = .embedding(vocabularySize: try field.field("vocabularySize").size(),
                              outputSize: try field.field("outputSize").size(),
                              maskZero: try field.optionalField("maskZero")?.bool() ?? false)
        case "rnn":
            self = .recurrent(try RecurrentConfiguration(json: field))
        case "bidirectional":
            let modeField = try field.field("mergeMode")
            let mergeMode = try modeField.string()
            guard Bidirectional<SimpleRNNCell>.MergeMode(rawValue: mergeMode) != nil else {
                throw InvalidFieldError(modeField, "unknown merge mode '\(mergeMode)' (known: concatenate, sum, multiply, average)")
            }
            self = .bidirectional(mergeMode: mergeMode, layer: try RecurrentConfiguration(json: try field.field("layer")))
        case "concatenate":
            let rank = ArchiveLimits.maximumRank
            self = .concatenate(axis: try field.field("axis").int(in: -(rank + 1)...rank))
        case "add": self = .add
        case "multiply": self = .multiply
        case "repeat_vector": self = .repeatVector(count: try field.field("count").size())
        case "time_distributed": self = .timeDistributed(try LayerConfiguration(json: try field.field("layer")))
        case "masking":
            self = .masking(maskValue: try field.field("maskValue").float("a finite number") { $0.isFinite })
        default:
            func number(_ key: String, _ requirement: String, _ isValid: (Float) -> Bool) throws -> Float {
                try field.field(key).float(requirement, where: isValid)
            }
            self = .echoStateNetwork(EchoStateConfiguration(
                reservoirSize: try field.field("reservoirSize").size(),
                outputSize: try field.field("outputSize").size(),
                spectralRadius: try number("spectralRadius", "a finite number ≥ 0") { $0.isFinite && $0 >= 0 },
                leakRate: try number("leakRate", "a rate in [0, 1]") { $0 >= 0 && $0 <= 1 },
                inputScaling: try number("inputScaling", "a finite number ≥ 0") { $0.isFinite && $0 >= 0 },
                connectivity: try number("connectivity", "a probability in (0, 1]") { $0 > 0 && $0 <= 1 },
                returnSequences: try field.field("returnSequences").bool()))
        }
    }

    /// The layer object.
    var json: JSON {
        var object = JSONObject()
        switch self {
        case .dense(let outputSize, let activation, let usesBias):
            object["type"] = .string("dense")
            object["outputSize"] = jsonNumber(outputSize)
            object["activation"] = .string(activation.rawValue)
            object["usesBias"] = .bool(usesBias)
        case .dropout(let rate):
            object["type"] = .string("dropout")
            object["rate"] = jsonNumber(rate)
        case .embedding(let vocabularySize, let outputSize, let maskZero):
            object["type"] = .string("embedding")
            object["vocabularySize"] = jsonNumber(vocabularySize)
            object["outputSize"] = jsonNumber(outputSize)
            if maskZero { object["maskZero"] = .bool(true) }
        case .recurrent(let layer):
            object["type"] = .string("rnn")
            layer.write(to: &object)
        case .bidirectional(let mergeMode, let layer):
            object["type"] = .string("bidirectional")
            object["mergeMode"] = .string(mergeMode)
            var wrapped = JSONObject()
            layer.write(to: &wrapped)
            object["layer"] = .object(wrapped)
        case .echoStateNetwork(let network):
            object["type"] = .string("echo_state_network")
            object["reservoirSize"] = jsonNumber(network.reservoirSize)
            object["outputSize"] = jsonNumber(network.outputSize)
            object["spectralRadius"] = jsonNumber(network.spectralRadius)
            object["leakRate"] = jsonNumber(network.leakRate)
            object["inputScaling"] = jsonNumber(network.inputScaling)
            object["connectivity"] = jsonNumber(network.connectivity)
            object["returnSequences"] = .bool(network.returnSequences)
        case .concatenate(let axis):
            object["type"] = .string("concatenate")
            object["axis"] = jsonNumber(axis)
        case .add: object["type"] = .string("add")
        case .multiply: object["type"] = .string("multiply")
        case .repeatVector(let count):
            object["type"] = .string("repeat_vector")
            object["count"] = jsonNumber(count)
        case .timeDistributed(let layer):
            object["type"] = .string("time_distributed")
            object["layer"] = layer.json
        case .masking(let maskValue):
            object["type"] = .string("masking")
            object["maskValue"] = jsonNumber(maskValue)
        }
        return .object(object)
    }
}
