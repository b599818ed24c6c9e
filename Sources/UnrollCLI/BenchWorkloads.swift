import Graph
import Layers
import Train

// The workloads `unroll bench` times: a recurrent layer, then a Dense head on its last output.

extension BenchCommand {
    /// The recurrent layer of a workload: a built-in cell, or one of the cells written in CustomCells.swift.
    enum Architecture {
        case builtIn(CellKind)
        case customMGU
        case customGRU

        /// The layer's name in the workload's description.
        var layerName: String {
            switch self {
            case .builtIn(let cell):
                ["lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN", "peephole": "PeepholeLSTM", "indrnn": "IndRNN"][cell.rawValue]!
            case .customMGU: "MGU"
            case .customGRU: "custom GRU"
            }
        }
    }

    /// One benchmark: a recurrent layer on `[batch, time, features]`, then `Dense(outputSize)`.
    struct Workload {
        let name: String
        let architecture: Architecture
        let hiddenSize: Int
        var batchSize: Int
        var timeSteps: Int
        let featureCount: Int
        let outputSize: Int

        static let all = [
            Workload(name: "seed-lstm", architecture: .builtIn(.lstm), hiddenSize: 400, batchSize: 128, timeSteps: 32, featureCount: 1, outputSize: 8),
            Workload(name: "small-rnn", architecture: .builtIn(.rnn), hiddenSize: 16, batchSize: 13, timeSteps: 3, featureCount: 1, outputSize: 1),
            Workload(name: "gru-long", architecture: .builtIn(.gru), hiddenSize: 128, batchSize: 16, timeSteps: 1000, featureCount: 8, outputSize: 1),
            Workload(name: "char-lstm", architecture: .builtIn(.lstm), hiddenSize: 256, batchSize: 32, timeSteps: 64, featureCount: 64, outputSize: 64),
            Workload(name: "custom-mgu", architecture: .customMGU, hiddenSize: 128, batchSize: 32, timeSteps: 100, featureCount: 1, outputSize: 1),
            Workload(name: "gru-custom", architecture: .customGRU, hiddenSize: 128, batchSize: 16, timeSteps: 1000, featureCount: 8, outputSize: 1),
        ]

        /// `LSTM(400) on [128, 32, 1] -> Dense(8)`.
        var text: String {
            "\(architecture.layerName)(\(hiddenSize)) on [\(batchSize), \(timeSteps), \(featureCount)] -> Dense(\(outputSize))"
        }

        /// The workload's model, not yet compiled.
        func makeModel() -> Sequential {
            let layer: Layer
            switch architecture {
            case .builtIn(let cell):
                return RecurrentModelDescription(cell: cell, hiddenSize: hiddenSize, pastSteps: timeSteps,
                                                 featureCount: featureCount, outputSize: outputSize).makeModel(name: name)
            case .customMGU:
                layer = RNN(MinimalGatedUnitCell(hiddenSize: hiddenSize), inputShape: [timeSteps, featureCount])
            case .customGRU:
                layer = RNN(CustomGRUCell(hiddenSize: hiddenSize), inputShape: [timeSteps, featureCount])
            }
            return Sequential([layer, Dense(outputSize: outputSize)], name: name)
        }
    }
}
