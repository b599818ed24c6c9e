import Foundation

/// A model too large for this machine, refused before anything is allocated.
struct MemoryError: Error, Equatable, CustomStringConvertible {
    /// What needs the memory ("training", "the model").
    let purpose: String
    /// The estimate, in bytes.
    let neededBytes: Double
    /// The machine's physical memory, in bytes.
    let availableBytes: Double
    /// The parameter count behind the estimate.
    let parameterCount: Double

    /// A sentence with both sizes and what to change.
    var description: String {
        "\(purpose) needs about \(Self.gigabytes(neededBytes)) (\(Self.count(parameterCount)) parameters), more than this "
            + "machine's \(Self.gigabytes(availableBytes)) of memory: use fewer --units or --layers, or a smaller --batch-size."
    }

    private static func gigabytes(_ bytes: Double) -> String { String(format: "%.1f GB", bytes / 1e9) }
    private static func count(_ value: Double) -> String { value < 1e12 ? String(format: "%.0f", value) : String(format: "%.3g", value) }
}

extension RecurrentModelDescription {
    /// The number of parameters, counted in `Double` so absurd sizes cannot overflow.
    var parameterCount: Double {
        let directions = isBidirectional ? 2.0 : 1.0
        let hidden = Double(hiddenSize)
        var input = Double(featureCount), total = 0.0
        for _ in 0..<layerCount {
            let perDirection: Double
            switch cell {
            case .lstm: perDirection = 4 * hidden * (input + hidden + 1)
            case .gru: perDirection = 3 * hidden * (input + hidden + 2)
            case .rnn: perDirection = hidden * (input + hidden + 1)
            case .peephole: perDirection = 4 * hidden * (input + hidden + 1) + 3 * hidden
            case .indrnn: perDirection = hidden * (input + 2)
            }
            total += directions * perDirection
            input = directions * hidden
        }
        return total + input * Double(outputSize) + Double(outputSize)
    }

    /// Bytes that training with batches of `batchSize` needs, roughly: each parameter four times (value,
    /// gradient, two optimizer moments) and, per layer, about eight saved values per gate unit, step and sample.
    func estimatedTrainingBytes(batchSize: Int) -> Double {
        let gates: Double = switch cell { case .lstm, .peephole: 4; case .gru: 3; case .rnn, .indrnn: 1 }
        let directions = isBidirectional ? 2.0 : 1.0
        let saved = Double(batchSize) * Double(pastSteps) * gates * Double(hiddenSize) * directions * Double(layerCount) * 8
        return 4 * (4 * parameterCount + saved)
    }

    /// Throws ``MemoryError`` when training with batches of `batchSize` (or, when `nil`, only holding the weights)
    /// would need more than the machine's physical memory.
    func checkFits(batchSize: Int?, physicalMemory: Double = Double(ProcessInfo.processInfo.physicalMemory)) throws {
        let needed = batchSize.map { estimatedTrainingBytes(batchSize: $0) } ?? 4 * parameterCount
        guard needed <= physicalMemory else {
            throw MemoryError(purpose: batchSize == nil ? "the model" : "training", neededBytes: needed,
                              availableBytes: physicalMemory, parameterCount: parameterCount)
        }
    }
}
