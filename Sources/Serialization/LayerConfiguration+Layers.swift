import Foundation
import Graph
import Layers

// The mapping between layers and their configurations: describing a built-in layer, creating it again.

// MARK: - Describing layers

/// A layer the archive can describe: its configuration, enough to create it again, and what weight naming
/// needs to see through its generic cell type.
protocol ArchivableLayer: Layer {
    /// Returns the configuration, or throws ``ModelArchiveError/unsupportedLayer(typeName:)``.
    func archivedConfiguration() throws -> LayerConfiguration
    /// The recurrent layers this layer runs, each with its cell: itself for an `RNN`, forward then backward for a
    /// `Bidirectional`, none for a layer without cells.
    var directions: [(layer: any Layer, cell: any RecurrentCell)] { get }
}

extension ArchivableLayer {
    var directions: [(layer: any Layer, cell: any RecurrentCell)] { [] }
}

/// A cell the archive can describe.
protocol ArchivableCell: RecurrentCell {
    /// Returns the configuration, or throws ``ModelArchiveError/unsupportedLayer(typeName:)``.
    func archivedConfiguration() throws -> CellConfiguration
    /// The cells of a `StackedCells`, lowest first; `nil` for any other cell.
    var stackedCells: [any RecurrentCell]? { get }
}

extension ArchivableCell {
    var stackedCells: [any RecurrentCell]? { nil }
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
        .embedding(vocabularySize: vocabularySize, outputSize: outputSize, maskZero: maskZero)
    }
}

extension Concatenate: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .concatenate(axis: axis) }
}

extension Add: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .add }
}

extension Multiply: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .multiply }
}

extension RepeatVector: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .repeatVector(count: count) }
}

extension Masking: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .masking(maskValue: maskValue) }
}

extension TimeDistributed: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        guard let layer = layer as? any ArchivableLayer else { throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName) }
        return .timeDistributed(try layer.archivedConfiguration())
    }
}

extension RNN: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration { .recurrent(try recurrentConfiguration()) }

    var directions: [(layer: any Layer, cell: any RecurrentCell)] { [(self, cell)] }

    func recurrentConfiguration() throws -> RecurrentConfiguration {
        guard let cell = cell as? any ArchivableCell else { throw ModelArchiveError.unsupportedLayer(typeName: typeName) }
        return RecurrentConfiguration(cell: try cell.archivedConfiguration(), returnSequences: returnSequences,
                                      goBackwards: goBackwards, isStateful: isStateful, dropout: dropout,
                                      recurrentDropout: recurrentDropout)
    }
}

extension Bidirectional: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        .bidirectional(mergeMode: mergeMode.rawValue, layer: try forward.recurrentConfiguration())
    }

    var directions: [(layer: any Layer, cell: any RecurrentCell)] { [(forward, forward.cell), (backward, backward.cell)] }
}

extension EchoStateNetwork: ArchivableLayer {
    func archivedConfiguration() throws -> LayerConfiguration {
        .echoStateNetwork(EchoStateConfiguration(reservoirSize: reservoirSize, outputSize: outputSize,
                                                 spectralRadius: spectralRadius, leakRate: leakRate,
                                                 inputScaling: inputScaling, connectivity: connectivity,
                                                 returnSequences: returnSequences))
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
    var stackedCells: [any RecurrentCell]? { cells }

    func archivedConfiguration() throws -> CellConfiguration {
        let configurations = try cells.map { cell -> CellConfiguration in
            guard let cell = cell as? any ArchivableCell, cell.stackedCells == nil else {
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
    /// Every number was range-checked while decoding, so no initializer check can fail here.
    func makeLayer() throws -> any Layer {
        switch self {
        case .dense(let outputSize, let activation, let usesBias):
            return Dense(outputSize: outputSize, activation: activation, usesBias: usesBias)
        case .dropout(let rate):
            return Dropout(rate: rate)
        case .embedding(let vocabularySize, let outputSize, let maskZero):
            return Embedding(vocabularySize: vocabularySize, outputSize: outputSize, maskZero: maskZero)
        case .recurrent(let layer):
            return try layer.makeLayer(bidirectionalMergeMode: nil)
        case .bidirectional(let mergeMode, let layer):
            return try layer.makeLayer(bidirectionalMergeMode: mergeMode)
        case .echoStateNetwork(let network):
            return EchoStateNetwork(reservoirSize: network.reservoirSize, outputSize: network.outputSize,
                                    spectralRadius: network.spectralRadius, leakRate: network.leakRate,
                                    inputScaling: network.inputScaling, connectivity: network.connectivity,
                                    returnSequences: network.returnSequences)
        case .concatenate(let axis): return Concatenate(axis: axis)
        case .add: return Add()
        case .multiply: return Multiply()
        case .repeatVector(let count): return RepeatVector(count)
        case .timeDistributed(let layer): return TimeDistributed(try layer.makeLayer())
        case .masking(let maskValue): return Masking(maskValue: maskValue)
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
            let layer = RNN(cell, returnSequences: returnSequences, goBackwards: goBackwards, isStateful: isStateful)
            layer.dropout = dropout
            layer.recurrentDropout = recurrentDropout
            return layer
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
