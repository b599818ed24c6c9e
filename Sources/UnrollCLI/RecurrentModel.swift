import Graph
import Layers
import Train

/// The recurrent cells the tool can build, by their command-line names.
enum CellKind: String, CaseIterable {
    case lstm, gru, rnn, peephole, indrnn

    /// The names, for help texts and error messages.
    static var names: [String] { allCases.map(\.rawValue) }

    /// Returns a recurrent layer of this cell for inputs `[time, features]`, optionally wrapped in
    /// ``Bidirectional`` (two directions, concatenated).
    func layer(hiddenSize: Int, inputShape: [Int], returnSequences: Bool, isBidirectional: Bool) -> Layer {
        switch self {
        case .lstm:
            let make = { LSTM(hiddenSize: hiddenSize, inputShape: inputShape, returnSequences: returnSequences) }
            return isBidirectional ? Bidirectional(make()) : make()
        case .gru:
            let make = { GRU(hiddenSize: hiddenSize, inputShape: inputShape, returnSequences: returnSequences) }
            return isBidirectional ? Bidirectional(make()) : make()
        case .rnn:
            let make = { SimpleRNN(hiddenSize: hiddenSize, inputShape: inputShape, returnSequences: returnSequences) }
            return isBidirectional ? Bidirectional(make()) : make()
        case .peephole:
            let make = { PeepholeLSTM(hiddenSize: hiddenSize, inputShape: inputShape, returnSequences: returnSequences) }
            return isBidirectional ? Bidirectional(make()) : make()
        case .indrnn:
            let make = { IndRNN(hiddenSize: hiddenSize, inputShape: inputShape, returnSequences: returnSequences) }
            return isBidirectional ? Bidirectional(make()) : make()
        }
    }
}

/// The shape of a many-to-one forecasting network: stacked recurrent layers, then a linear Dense head.
struct RecurrentModelDescription {
    var cell: CellKind = .lstm
    var hiddenSize = 32
    var layerCount = 1
    var isBidirectional = false
    var pastSteps: Int
    var featureCount: Int
    var outputSize: Int

    /// Returns the model: `layerCount` recurrent layers (all but the last returning sequences) on
    /// `[pastSteps, featureCount]`, then `Dense(outputSize)`.
    func makeModel(name: String = "sequential") -> Sequential {
        let model = Sequential(name: name)
        var features = featureCount
        for index in 0..<layerCount {
            model.add(cell.layer(hiddenSize: hiddenSize, inputShape: [pastSteps, features],
                                 returnSequences: index < layerCount - 1, isBidirectional: isBidirectional))
            features = hiddenSize * (isBidirectional ? 2 : 1)
        }
        model.add(Dense(outputSize: outputSize))
        return model
    }
}

/// The options shared by subcommands that describe a recurrent model.
enum ModelOptions {
    static func cell(default cell: String) -> OptionSpecification {
        .option("cell", "KIND", "Recurrent cell: \(CellKind.names.joined(separator: ", ")) (default \(cell)).")
    }

    /// Reads `--cell`.
    static func cell(from arguments: Arguments, default defaultCell: CellKind) throws -> CellKind {
        CellKind(rawValue: try arguments.choice("cell", from: CellKind.names, default: defaultCell.rawValue))!
    }
}
