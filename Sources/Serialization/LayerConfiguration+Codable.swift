import Foundation
import Graph
import Layers

// How layer and cell configurations are written to and read from `model.json`, every number range-checked.

/// Every key of a layer or cell object in `model.json`.
enum ArchiveKey: String, CodingKey {
    case type, kind, cell, cells, layer
    case outputSize, activation, usesBias, rate, vocabularySize
    case hiddenSize, unitForgetBias, resetAfter, recurrentBound
    case returnSequences, goBackwards, isStateful, mergeMode
    case reservoirSize, spectralRadius, leakRate, inputScaling, connectivity
}

/// A `type` or `kind` the archive does not know; mapped to ``ModelArchiveError/unknownLayerKind(file:kind:location:)``.
struct UnknownKindError: Error {
    let kind: String
    let location: String
}

/// Renders a coding path the way a reader finds it in the file: `layers[2].cell.hiddenSize`.
func describePath(_ codingPath: [any CodingKey]) -> String {
    var result = ""
    for key in codingPath {
        if let index = key.intValue {
            result += "[\(index)]"
        } else {
            result += (result.isEmpty ? "" : ".") + key.stringValue
        }
    }
    return result.isEmpty ? "the top level" : result
}

/// Returns a number as a reader wrote it: `-3`, not `-3.0`.
func describeNumber(_ value: Double) -> String {
    value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
}

extension KeyedDecodingContainer where Key == ArchiveKey {
    /// Decodes a size in `1...maximumSize`.
    ///
    /// Read as `Double` and checked here: `JSONDecoder` on Linux reports an `Int` field holding `2.5` or `1e30`
    /// only as "not valid JSON", without saying which field.
    func decodeSize(_ key: Key) throws -> Int {
        let value = try decode(Double.self, forKey: key)
        guard value.rounded() == value, value >= 1, value <= Double(ArchiveLimits.maximumSize) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self,
                debugDescription: "\(describeNumber(value)) is not a size in 1...\(ArchiveLimits.maximumSize)")
        }
        return Int(value)
    }

    /// Decodes a number that, rounded to `Float`, satisfies `isValid`; `requirement` says what it must be.
    ///
    /// Checked after rounding: a rate of 0.999999999 becomes 1, which a layer's check may reject.
    func decodeFloat(_ key: Key, _ requirement: String, _ isValid: (Float) -> Bool) throws -> Float {
        let value = try decode(Double.self, forKey: key)
        let rounded = Float(value)
        guard isValid(rounded) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                                                   debugDescription: "\(describeNumber(value)) is not \(requirement)")
        }
        return rounded
    }

    /// Decodes the raw value of an ``Activation``.
    func decodeActivation(_ key: Key) throws -> Activation {
        let name = try decode(String.self, forKey: key)
        guard let activation = Activation(rawValue: name) else {
            let known = Activation.allCases.map(\.rawValue).joined(separator: ", ")
            throw DecodingError.dataCorruptedError(forKey: key, in: self,
                                                   debugDescription: "unknown activation '\(name)' (known: \(known))")
        }
        return activation
    }
}

extension CellConfiguration: Codable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ArchiveKey.self)
        let kind = try container.decode(String.self, forKey: .kind)
        switch kind {
        case "lstm":
            self = .lstm(hiddenSize: try container.decodeSize(.hiddenSize),
                         unitForgetBias: try container.decode(Bool.self, forKey: .unitForgetBias))
        case "gru":
            self = .gru(hiddenSize: try container.decodeSize(.hiddenSize),
                        resetAfter: try container.decode(Bool.self, forKey: .resetAfter))
        case "simple_rnn":
            self = .simpleRNN(hiddenSize: try container.decodeSize(.hiddenSize),
                              activation: try container.decodeActivation(.activation))
        case "peephole_lstm":
            self = .peepholeLSTM(hiddenSize: try container.decodeSize(.hiddenSize))
        case "indrnn":
            // A negative bound would make the constraint's clamping range empty, which traps.
            let isUnbounded = try !container.contains(.recurrentBound) || container.decodeNil(forKey: .recurrentBound)
            let bound = isUnbounded ? nil : try container.decodeFloat(.recurrentBound, "a finite number ≥ 0") { $0.isFinite && $0 >= 0 }
            self = .indRNN(hiddenSize: try container.decodeSize(.hiddenSize), recurrentBound: bound)
        case "stacked":
            let cells = try container.decode([CellConfiguration].self, forKey: .cells)
            guard (1...ArchiveLimits.maximumStackedCellCount).contains(cells.count) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .cells, in: container,
                    debugDescription: "a stack needs 1...\(ArchiveLimits.maximumStackedCellCount) cells, got \(cells.count)")
            }
            guard cells.allSatisfy({ $0.kind == cells[0].kind }), cells[0].kind != "stacked" else {
                throw DecodingError.dataCorruptedError(
                    forKey: .cells, in: container,
                    debugDescription: "a stack holds cells of one kind, not a stack; got \(cells.map(\.kind))")
            }
            self = .stacked(cells)
        default:
            throw UnknownKindError(kind: kind, location: describePath(container.codingPath + [ArchiveKey.kind]))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ArchiveKey.self)
        try container.encode(kind, forKey: .kind)
        switch self {
        case .lstm(let hiddenSize, let unitForgetBias):
            try container.encode(hiddenSize, forKey: .hiddenSize)
            try container.encode(unitForgetBias, forKey: .unitForgetBias)
        case .gru(let hiddenSize, let resetAfter):
            try container.encode(hiddenSize, forKey: .hiddenSize)
            try container.encode(resetAfter, forKey: .resetAfter)
        case .simpleRNN(let hiddenSize, let activation):
            try container.encode(hiddenSize, forKey: .hiddenSize)
            try container.encode(activation.rawValue, forKey: .activation)
        case .peepholeLSTM(let hiddenSize):
            try container.encode(hiddenSize, forKey: .hiddenSize)
        case .indRNN(let hiddenSize, let recurrentBound):
            try container.encode(hiddenSize, forKey: .hiddenSize)
            try container.encode(recurrentBound, forKey: .recurrentBound)
        case .stacked(let cells):
            try container.encode(cells, forKey: .cells)
        }
    }
}

extension RecurrentConfiguration: Codable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ArchiveKey.self)
        cell = try container.decode(CellConfiguration.self, forKey: .cell)
        returnSequences = try container.decode(Bool.self, forKey: .returnSequences)
        goBackwards = try container.decode(Bool.self, forKey: .goBackwards)
        isStateful = try container.decode(Bool.self, forKey: .isStateful)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ArchiveKey.self)
        try container.encode(cell, forKey: .cell)
        try container.encode(returnSequences, forKey: .returnSequences)
        try container.encode(goBackwards, forKey: .goBackwards)
        try container.encode(isStateful, forKey: .isStateful)
    }
}

extension LayerConfiguration: Codable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: ArchiveKey.self)
        let type = try container.decode(String.self, forKey: .type)
        switch type {
        case "dense":
            self = .dense(outputSize: try container.decodeSize(.outputSize),
                          activation: try container.decodeActivation(.activation),
                          usesBias: try container.decode(Bool.self, forKey: .usesBias))
        case "dropout":
            self = .dropout(rate: try container.decodeFloat(.rate, "a rate in [0, 1)") { $0 >= 0 && $0 < 1 })
        case "embedding":
            self = .embedding(vocabularySize: try container.decodeSize(.vocabularySize),
                              outputSize: try container.decodeSize(.outputSize))
        case "rnn":
            self = .recurrent(try RecurrentConfiguration(from: decoder))
        case "bidirectional":
            let mergeMode = try container.decode(String.self, forKey: .mergeMode)
            guard Bidirectional<SimpleRNNCell>.MergeMode(rawValue: mergeMode) != nil else {
                throw DecodingError.dataCorruptedError(
                    forKey: .mergeMode, in: container,
                    debugDescription: "unknown merge mode '\(mergeMode)' (known: concatenate, sum, multiply, average)")
            }
            self = .bidirectional(mergeMode: mergeMode, layer: try container.decode(RecurrentConfiguration.self, forKey: .layer))
        case "echo_state_network":
            self = .echoStateNetwork(EchoStateConfiguration(
                reservoirSize: try container.decodeSize(.reservoirSize),
                outputSize: try container.decodeSize(.outputSize),
                spectralRadius: try container.decodeFloat(.spectralRadius, "a finite number ≥ 0") { $0.isFinite && $0 >= 0 },
                leakRate: try container.decodeFloat(.leakRate, "a rate in [0, 1]") { $0 >= 0 && $0 <= 1 },
                inputScaling: try container.decodeFloat(.inputScaling, "a finite number ≥ 0") { $0.isFinite && $0 >= 0 },
                connectivity: try container.decodeFloat(.connectivity, "a probability in (0, 1]") { $0 > 0 && $0 <= 1 },
                returnSequences: try container.decode(Bool.self, forKey: .returnSequences)))
        default:
            throw UnknownKindError(kind: type, location: describePath(container.codingPath + [ArchiveKey.type]))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: ArchiveKey.self)
        switch self {
        case .dense(let outputSize, let activation, let usesBias):
            try container.encode("dense", forKey: .type)
            try container.encode(outputSize, forKey: .outputSize)
            try container.encode(activation.rawValue, forKey: .activation)
            try container.encode(usesBias, forKey: .usesBias)
        case .dropout(let rate):
            try container.encode("dropout", forKey: .type)
            try container.encode(rate, forKey: .rate)
        case .embedding(let vocabularySize, let outputSize):
            try container.encode("embedding", forKey: .type)
            try container.encode(vocabularySize, forKey: .vocabularySize)
            try container.encode(outputSize, forKey: .outputSize)
        case .recurrent(let layer):
            try container.encode("rnn", forKey: .type)
            try layer.encode(to: encoder)
        case .bidirectional(let mergeMode, let layer):
            try container.encode("bidirectional", forKey: .type)
            try container.encode(mergeMode, forKey: .mergeMode)
            try container.encode(layer, forKey: .layer)
        case .echoStateNetwork(let network):
            try container.encode("echo_state_network", forKey: .type)
            try container.encode(network.reservoirSize, forKey: .reservoirSize)
            try container.encode(network.outputSize, forKey: .outputSize)
            try container.encode(network.spectralRadius, forKey: .spectralRadius)
            try container.encode(network.leakRate, forKey: .leakRate)
            try container.encode(network.inputScaling, forKey: .inputScaling)
            try container.encode(network.connectivity, forKey: .connectivity)
            try container.encode(network.returnSequences, forKey: .returnSequences)
        }
    }
}
