import Foundation
import Graph
import Layers

// The architecture half of a model archive: what `model.json` says about each layer, how it is read
// (every number checked before it reaches an initializer with a precondition), and how layers are
// described and rebuilt.

/// Bounds on every number a model description may hold. A hostile `model.json` must fail with an error,
/// never reach a layer initializer's precondition or ask for an allocation the process cannot make.
enum ArchiveLimits {
    /// The largest size (hidden, output, vocabulary, or an input dimension).
    static let maximumSize = 1 << 24
    /// The largest rank of the model's input shape.
    static let maximumRank = 8
    /// The most layers a model may have.
    static let maximumLayerCount = 4096
    /// The most cells a stack may have.
    static let maximumStackedCellCount = 256
    /// The parameter scalars a description may ask for even when its weights file holds fewer (beyond this, no
    /// more than the file holds). Small enough to allocate at once; large enough that a small model loaded
    /// against another model's weights reaches the name-by-name check, which names the tensor.
    static let scalarAllowance = 1 << 20
}

/// The settings of one built-in recurrent cell, enough to create it again.
indirect enum CellConfiguration: Equatable {
    case lstm(hiddenSize: Int, unitForgetBias: Bool)
    case gru(hiddenSize: Int, resetAfter: Bool)
    case simpleRNN(hiddenSize: Int, activation: Activation)
    case peepholeLSTM(hiddenSize: Int)
    case indRNN(hiddenSize: Int, recurrentBound: Float?)
    /// Cells of one kind, lowest first (never itself a stack).
    case stacked([CellConfiguration])

    /// The `kind` written in `model.json`.
    var kind: String {
        switch self {
        case .lstm: "lstm"
        case .gru: "gru"
        case .simpleRNN: "simple_rnn"
        case .peepholeLSTM: "peephole_lstm"
        case .indRNN: "indrnn"
        case .stacked: "stacked"
        }
    }

    /// The output size of the cell (the top cell's, for a stack).
    var hiddenSize: Int {
        switch self {
        case .lstm(let size, _), .gru(let size, _), .simpleRNN(let size, _), .peepholeLSTM(let size),
             .indRNN(let size, _):
            size
        case .stacked(let cells): cells.last?.hiddenSize ?? 0
        }
    }

    /// The number of parameter scalars for an input size, or `nil` when it overflows `Int`.
    func parameterScalarCount(inputSize: Int) -> Int? {
        let h = hiddenSize
        switch self {
        case .lstm: return checkedProduct(4, h, checkedSum(inputSize, h, 1))
        case .peepholeLSTM:
            return checkedSum(checkedProduct(4, h, checkedSum(inputSize, h, 1)), checkedProduct(3, h))
        case .gru(_, let resetAfter):
            return checkedSum(checkedProduct(3, h, checkedSum(inputSize, h)), checkedProduct(3, h, resetAfter ? 2 : 1))
        case .simpleRNN: return checkedProduct(h, checkedSum(inputSize, h, 1))
        case .indRNN: return checkedProduct(h, checkedSum(inputSize, 2))
        case .stacked(let cells):
            var total: Int? = 0
            var size = inputSize
            for cell in cells {
                total = checkedSum(total, cell.parameterScalarCount(inputSize: size))
                size = cell.hiddenSize
            }
            return total
        }
    }
}

/// A recurrent layer's settings: its cell and how it runs over time.
struct RecurrentConfiguration: Equatable {
    var cell: CellConfiguration
    var returnSequences: Bool
    var goBackwards: Bool
    var isStateful: Bool
}

/// The settings of one layer of a ``Sequential`` model, enough to create it again (weights aside).
enum LayerConfiguration: Equatable {
    case dense(outputSize: Int, activation: Activation, usesBias: Bool)
    case dropout(rate: Float)
    case embedding(vocabularySize: Int, outputSize: Int)
    case recurrent(RecurrentConfiguration)
    /// `mergeMode` is a validated raw value of ``Bidirectional/MergeMode``.
    case bidirectional(mergeMode: String, layer: RecurrentConfiguration)

    /// Returns the number of parameter scalars (`nil` on overflow) and the output shape for an input shape.
    ///
    /// This mirrors the layers' own shape rules so that the cost of a description is known before any layer
    /// allocates; where a shape does not fit, the layers' own check reports it afterwards.
    func parameterScalarCount(inputShape: [Int]) -> (count: Int?, outputShape: [Int]) {
        let inputSize = inputShape.last ?? 0
        switch self {
        case .dense(let outputSize, _, let usesBias):
            return (checkedSum(checkedProduct(inputSize, outputSize), usesBias ? outputSize : 0),
                    inputShape.dropLast() + [outputSize])
        case .dropout:
            return (0, inputShape)
        case .embedding(let vocabularySize, let outputSize):
            return (checkedProduct(vocabularySize, outputSize), inputShape + [outputSize])
        case .recurrent(let layer):
            return (layer.cell.parameterScalarCount(inputSize: inputSize), layer.outputShape(inputShape))
        case .bidirectional(let mergeMode, let layer):
            var shape = layer.outputShape(inputShape)
            if mergeMode == "concatenate", let last = shape.popLast() { shape.append(2 * last) }
            return (checkedProduct(2, layer.cell.parameterScalarCount(inputSize: inputSize)), shape)
        }
    }
}

extension RecurrentConfiguration {
    func outputShape(_ inputShape: [Int]) -> [Int] {
        returnSequences ? [inputShape.first ?? 0, cell.hiddenSize] : [cell.hiddenSize]
    }
}

/// Returns the sum, or `nil` when an operand is `nil` or the sum overflows.
func checkedSum(_ terms: Int?...) -> Int? {
    var total = 0
    for term in terms {
        guard let term else { return nil }
        let (sum, overflow) = total.addingReportingOverflow(term)
        if overflow { return nil }
        total = sum
    }
    return total
}

/// Returns the product, or `nil` when a factor is `nil` or the product overflows.
func checkedProduct(_ factors: Int?...) -> Int? {
    var total = 1
    for factor in factors {
        guard let factor else { return nil }
        let (product, overflow) = total.multipliedReportingOverflow(by: factor)
        if overflow { return nil }
        total = product
    }
    return total
}

// MARK: - JSON

/// Every key of a layer or cell object in `model.json`.
enum ArchiveKey: String, CodingKey {
    case type, kind, cell, cells, layer
    case outputSize, activation, usesBias, rate, vocabularySize
    case hiddenSize, unitForgetBias, resetAfter, recurrentBound
    case returnSequences, goBackwards, isStateful, mergeMode
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
            let value = try container.decodeIfPresent(Double.self, forKey: .recurrentBound)
            let bound = value.map { Float($0) }
            // A negative bound would make the constraint's clamping range empty, which traps.
            if let value, let bound, !(bound.isFinite && bound >= 0) {
                throw DecodingError.dataCorruptedError(forKey: .recurrentBound, in: container,
                                                       debugDescription: "\(describeNumber(value)) is not a finite number ≥ 0")
            }
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
            let value = try container.decode(Double.self, forKey: .rate)
            // Checked after rounding to Float: 0.999999999 rounds to 1, which Dropout's precondition rejects.
            let rate = Float(value)
            guard rate >= 0 && rate < 1 else {
                throw DecodingError.dataCorruptedError(forKey: .rate, in: container,
                                                       debugDescription: "\(describeNumber(value)) is not a rate in [0, 1)")
            }
            self = .dropout(rate: rate)
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
        }
    }
}

// MARK: - Describing layers

/// A layer the archive can describe: its configuration, enough to create it again.
protocol ArchivableLayer: Layer {
    /// Returns the configuration, or throws ``ModelArchiveError/unsupportedLayer(typeName:)``.
    func archivedConfiguration() throws -> LayerConfiguration
}

/// A cell the archive can describe.
protocol ArchivableCell: RecurrentCell {
    /// Returns the configuration, or throws ``ModelArchiveError/unsupportedLayer(typeName:)``.
    func archivedConfiguration() throws -> CellConfiguration
}

extension Dense: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        .dense(outputSize: outputSize, activation: activation, usesBias: usesBias)
    }
}

extension Dropout: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .dropout(rate: rate) }
}

extension Embedding: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        .embedding(vocabularySize: vocabularySize, outputSize: outputSize)
    }
}

extension RNN: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .recurrent(try recurrentConfiguration()) }

    func recurrentConfiguration() throws -> RecurrentConfiguration {
        guard let cell = cell as? any ArchivableCell else { throw ModelArchiveError.unsupportedLayer(typeName: typeName) }
        return RecurrentConfiguration(cell: try cell.archivedConfiguration(), returnSequences: returnSequences,
                                      goBackwards: goBackwards, isStateful: isStateful)
    }
}

extension Bidirectional: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        .bidirectional(mergeMode: mergeMode.rawValue, layer: try forward.recurrentConfiguration())
    }
}

extension LSTMCell: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration {
        .lstm(hiddenSize: hiddenSize, unitForgetBias: unitForgetBias)
    }
}

extension GRUCell: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration { .gru(hiddenSize: hiddenSize, resetAfter: resetAfter) }
}

extension SimpleRNNCell: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration {
        .simpleRNN(hiddenSize: hiddenSize, activation: activation)
    }
}

extension PeepholeLSTMCell: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration { .peepholeLSTM(hiddenSize: hiddenSize) }
}

extension IndRNNCell: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration {
        .indRNN(hiddenSize: hiddenSize, recurrentBound: recurrentBound)
    }
}

extension StackedCells: ArchivableCell {
    func archivedConfiguration() throws -> CellConfiguration {
        let configurations = try cells.map { cell -> CellConfiguration in
            guard let cell = cell as? any ArchivableCell, !(cell is any CellStack) else {
                throw ModelArchiveError.unsupportedLayer(typeName: typeName)
            }
            return try cell.archivedConfiguration()
        }
        return .stacked(configurations)
    }
}

// MARK: - Rebuilding layers

extension LayerConfiguration {
    /// Creates the layer this configuration describes, unbuilt and without an input shape.
    ///
    /// Every number was range-checked while decoding, so no initializer precondition can fail here.
    func makeLayer() throws -> any Layer {
        switch self {
        case .dense(let outputSize, let activation, let usesBias):
            return Dense(outputSize: outputSize, activation: activation, usesBias: usesBias)
        case .dropout(let rate):
            return Dropout(rate: rate)
        case .embedding(let vocabularySize, let outputSize):
            return Embedding(vocabularySize: vocabularySize, outputSize: outputSize)
        case .recurrent(let layer):
            return try layer.makeLayer(bidirectionalMergeMode: nil)
        case .bidirectional(let mergeMode, let layer):
            return try layer.makeLayer(bidirectionalMergeMode: mergeMode)
        }
    }
}

extension RecurrentConfiguration {
    /// Creates the recurrent layer, wrapped in ``Bidirectional`` when a merge mode is given.
    func makeLayer(bidirectionalMergeMode mode: String?) throws -> any Layer {
        switch cell {
        case .lstm: return try wrap(mode) { cell.makeLSTMCell() }
        case .gru: return try wrap(mode) { cell.makeGRUCell() }
        case .simpleRNN: return try wrap(mode) { cell.makeSimpleRNNCell() }
        case .peepholeLSTM: return try wrap(mode) { cell.makePeepholeLSTMCell() }
        case .indRNN: return try wrap(mode) { cell.makeIndRNNCell() }
        case .stacked(let cells):
            switch cells.first {
            case .lstm: return try wrap(mode) { stack(cells) { $0.makeLSTMCell() } }
            case .gru: return try wrap(mode) { stack(cells) { $0.makeGRUCell() } }
            case .simpleRNN: return try wrap(mode) { stack(cells) { $0.makeSimpleRNNCell() } }
            case .peepholeLSTM: return try wrap(mode) { stack(cells) { $0.makePeepholeLSTMCell() } }
            case .indRNN: return try wrap(mode) { stack(cells) { $0.makeIndRNNCell() } }
            case .stacked, nil: throw ModelArchiveError.unsupportedLayer(typeName: "a stack of stacks or of no cells")
            }
        }
    }

    /// Returns an ``RNN`` of a cell from `makeCell`, or a ``Bidirectional`` of two when `mergeModeName` is given.
    private func wrap<Cell: RecurrentCell>(_ mergeModeName: String?, _ makeCell: () -> Cell?) throws -> any Layer {
        func layer() throws -> RNN<Cell> {
            guard let cell = makeCell() else {
                throw ModelArchiveError.unsupportedLayer(typeName: "a stack mixing cell kinds")
            }
            return RNN(cell, returnSequences: returnSequences, goBackwards: goBackwards, isStateful: isStateful)
        }
        guard let mergeModeName else { return try layer() }
        guard let mergeMode = Bidirectional<Cell>.MergeMode(rawValue: mergeModeName) else {
            throw ModelArchiveError.unsupportedLayer(typeName: "Bidirectional with merge mode '\(mergeModeName)'")
        }
        // Bidirectional evaluates its argument once per direction; the cells are made (and checked) beforehand
        // because that argument cannot throw.
        let forward = try layer()
        var directions = [forward, try layer()].makeIterator()
        return Bidirectional(directions.next() ?? forward, mergeMode: mergeMode)
    }
}

/// Returns a stack of the cells `make` creates, or `nil` when one configuration is of another kind.
private func stack<Cell: RecurrentCell>(_ configurations: [CellConfiguration],
                                         _ make: (CellConfiguration) -> Cell?) -> StackedCells<Cell>? {
    let cells = configurations.compactMap(make)
    guard !cells.isEmpty, cells.count == configurations.count else { return nil }
    return StackedCells(cells)
}

extension CellConfiguration {
    func makeLSTMCell() -> LSTMCell? {
        guard case let .lstm(hiddenSize, unitForgetBias) = self else { return nil }
        return LSTMCell(hiddenSize: hiddenSize, unitForgetBias: unitForgetBias)
    }

    func makeGRUCell() -> GRUCell? {
        guard case let .gru(hiddenSize, resetAfter) = self else { return nil }
        return GRUCell(hiddenSize: hiddenSize, resetAfter: resetAfter)
    }

    func makeSimpleRNNCell() -> SimpleRNNCell? {
        guard case let .simpleRNN(hiddenSize, activation) = self else { return nil }
        return SimpleRNNCell(hiddenSize: hiddenSize, activation: activation)
    }

    func makePeepholeLSTMCell() -> PeepholeLSTMCell? {
        guard case let .peepholeLSTM(hiddenSize) = self else { return nil }
        return PeepholeLSTMCell(hiddenSize: hiddenSize)
    }

    func makeIndRNNCell() -> IndRNNCell? {
        guard case let .indRNN(hiddenSize, recurrentBound) = self else { return nil }
        return IndRNNCell(hiddenSize: hiddenSize, recurrentBound: recurrentBound)
    }
}

// MARK: - JSON syntax errors

/// Finds the first syntax error in JSON text and says where it is.
///
/// `JSONDecoder` on Linux reports a syntax error only as "not valid JSON", with no position, and accepts some
/// text that is not JSON (a trailing comma, a leading zero); this strict RFC 8259 scan runs first so the message
/// can name a line and column. Nesting is bounded so hostile input cannot exhaust the stack.
struct JSONSyntaxCheck {
    private static let maximumDepth = 512
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    /// Returns `"line L, column C: problem"` for the first syntax error in `data`, or `nil` if there is none.
    static func firstError(in data: Data) -> String? {
        var check = JSONSyntaxCheck(bytes: Array(data))
        do {
            try check.value()
            check.skipWhitespace()
            guard check.position == check.bytes.count else { throw check.failure("unexpected text after the JSON value") }
            return nil
        } catch let failure as Failure {
            return failure.message
        } catch {
            return nil
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    struct Failure: Error {
        let message: String
    }

    private func failure(_ problem: String) -> Failure {
        let before = bytes[..<min(position, bytes.count)]
        let line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
        let column = before.count - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        return Failure(message: "line \(line), column \(column): \(problem)")
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { position += 1 }
    }

    private mutating func expect(_ character: Character, _ context: String) throws {
        skipWhitespace()
        guard current == character.asciiValue else {
            throw failure(current == nil ? "unexpected end of the text \(context)" : "expected '\(character)' \(context)")
        }
        position += 1
    }

    private mutating func value() throws {
        skipWhitespace()
        guard let byte = current else { throw failure("unexpected end of the text, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): try container(close: "}", isObject: true)
        case UInt8(ascii: "["): try container(close: "]", isObject: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: throw failure("expected a value")
        }
    }

    private mutating func container(close: Character, isObject: Bool) throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if current == close.asciiValue {
            position += 1
            return
        }
        while true {
            if isObject {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else {
                    throw failure(current == nil ? "unexpected end of the text in an object" : "expected a string key")
                }
                try string()
                try expect(":", "after an object key")
            }
            try value()
            skipWhitespace()
            if current == close.asciiValue {
                position += 1
                return
            }
            try expect(",", "or '\(close)' after \(isObject ? "an object member" : "an array element")")
        }
    }

    private mutating func string() throws {
        position += 1
        while let byte = current {
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return
            case UInt8(ascii: "\\"):
                guard let escape = current else { break }
                if escape == UInt8(ascii: "u") {
                    position += 1
                    for _ in 0..<4 {
                        guard let digit = current, Character(Unicode.Scalar(digit)).isHexDigit else {
                            throw failure("expected four hexadecimal digits after \\u")
                        }
                        position += 1
                    }
                } else if Array("\"\\/bfnrt".utf8).contains(escape) {
                    position += 1
                } else {
                    throw failure("invalid escape")
                }
            case 0..<0x20:
                position -= 1
                throw failure("unescaped control character in a string")
            default: break
            }
        }
        throw failure("unterminated string")
    }

    private mutating func digits() -> Int {
        let start = position
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        return position - start
    }

    private mutating func number() throws {
        if current == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0 else { throw failure("expected a digit") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else {
            position = integerStart
            throw failure("leading zero in a number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw failure("expected a digit after the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw failure("expected a digit in the exponent") }
        }
    }

    private mutating func literal(_ word: String) throws {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count,
              bytes[position..<(position + expected.count)].elementsEqual(expected) else {
            throw failure("expected a value")
        }
        position += expected.count
    }
}
