import Foundation
import Graph
import Serialization

/// What a callback asks of the training loop.
public enum CallbackDecision: Sendable {
    /// Go on.
    case proceed
    /// Stop after this epoch, for the given reason.
    case stop(reason: String)
}

/// Hooks into `fit`, like Keras' callbacks. Every method has a default that does nothing.
public protocol Callback: AnyObject {
    /// Called once before the first epoch.
    func trainingWillBegin(model: any TrainableModel) throws
    /// Called before each epoch.
    func epochWillBegin(_ epoch: Int, model: any TrainableModel) throws
    /// Called after each epoch with its logs (`"loss"`, `"val_loss"`, metrics).
    func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision
    /// Called once after training stops.
    func trainingDidEnd(model: any TrainableModel) throws
}

extension Callback {
    /// Does nothing.
    public func trainingWillBegin(model: any TrainableModel) throws {}
    /// Does nothing.
    public func epochWillBegin(_ epoch: Int, model: any TrainableModel) throws {}
    /// Proceeds.
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision { .proceed }
    /// Does nothing.
    public func trainingDidEnd(model: any TrainableModel) throws {}
}

/// Whether a smaller or a larger monitored value is better.
public enum MonitorMode: Sendable {
    /// Smaller is better for losses and errors, larger for accuracy (Keras' `"auto"`).
    case automatic
    /// Smaller is better.
    case minimum
    /// Larger is better.
    case maximum

    func isImprovement(_ value: Float, over best: Float, minimumDelta: Float, monitor: String) -> Bool {
        let larger: Bool
        switch self {
        case .automatic: larger = monitor.hasSuffix("accuracy")
        case .minimum: larger = false
        case .maximum: larger = true
        }
        return larger ? value > best + minimumDelta : value < best - minimumDelta
    }
}

/// Stops training when a monitored quantity has stopped improving, optionally restoring the best weights.
public final class EarlyStopping: Callback {
    /// The log entry watched (`"val_loss"` by default; `"loss"` when there is no validation data).
    public let monitor: String
    /// The smallest change that counts as an improvement.
    public let minimumDelta: Float
    /// How many epochs without improvement are tolerated.
    public let patience: Int
    /// Whether smaller or larger is better.
    public let mode: MonitorMode
    /// Whether the weights of the best epoch are put back when training stops.
    public let restoresBestWeights: Bool
    /// The epoch training stopped after, if it did.
    public private(set) var stoppedEpoch: Int?
    /// The best value seen.
    public private(set) var best: Float?
    private var wait = 0
    private var bestWeights: [Tensor]?

    /// Creates an early-stopping callback.
    public init(monitor: String = "val_loss", minimumDelta: Float = 0, patience: Int = 0,
                mode: MonitorMode = .automatic, restoresBestWeights: Bool = false) {
        self.monitor = monitor
        self.minimumDelta = Swift.abs(minimumDelta)
        self.patience = patience
        self.mode = mode
        self.restoresBestWeights = restoresBestWeights
    }

    /// Resets the state.
    public func trainingWillBegin(model: any TrainableModel) throws {
        wait = 0
        best = nil
        bestWeights = nil
        stoppedEpoch = nil
    }

    /// Tracks the monitored value and stops after `patience` epochs without improvement.
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        guard let value = logs[monitor] else {
            throw TrainingError.invalidArgument(name: "EarlyStopping.monitor", value: monitor,
                                                reason: "no such log entry; available: \(logs.keys.sorted().joined(separator: ", "))")
        }
        if let current = best, !mode.isImprovement(value, over: current, minimumDelta: minimumDelta, monitor: monitor) {
            wait += 1
            if wait >= patience {
                stoppedEpoch = epoch
                if restoresBestWeights, let bestWeights { try model.setWeights(bestWeights) }
                return .stop(reason: "early stopping: \(monitor) did not improve for \(wait) epochs (best \(best!))")
            }
        } else {
            best = value
            wait = 0
            if restoresBestWeights { bestWeights = model.weights }
        }
        return .proceed
    }
}

/// Saves the model's weights (safetensors, written atomically) after an epoch, optionally only when the
/// monitored value improved.
public final class ModelCheckpoint: Callback {
    /// Where the weights are written.
    public let url: URL
    /// The log entry compared when ``savesBestOnly`` is set.
    public let monitor: String
    /// Whether only improvements are saved.
    public let savesBestOnly: Bool
    /// Whether smaller or larger is better.
    public let mode: MonitorMode
    /// The epochs whose weights were saved.
    public private(set) var savedEpochs: [Int] = []
    private var best: Float?

    /// Creates a checkpoint callback.
    public init(url: URL, monitor: String = "val_loss", savesBestOnly: Bool = false, mode: MonitorMode = .automatic) {
        self.url = url
        self.monitor = monitor
        self.savesBestOnly = savesBestOnly
        self.mode = mode
    }

    /// Writes the weights when due.
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        if savesBestOnly {
            guard let value = logs[monitor] else {
                throw TrainingError.invalidArgument(name: "ModelCheckpoint.monitor", value: monitor, reason: "no such log entry")
            }
            if let best, !mode.isImprovement(value, over: best, minimumDelta: 0, monitor: monitor) { return .proceed }
            best = value
        }
        try model.saveWeights(to: url, metadata: ["epoch": String(epoch)])
        savedEpochs.append(epoch)
        return .proceed
    }
}

/// Sets the optimizer's learning rate at the start of every epoch from a function of the epoch and the current rate.
public final class LearningRateScheduler: Callback {
    private let schedule: (Int, Float) -> Float
    /// The rate set for each epoch so far.
    public private(set) var rates: [Float] = []

    /// Creates a scheduler from `(epoch, currentRate) -> newRate`.
    public init(_ schedule: @escaping (Int, Float) -> Float) { self.schedule = schedule }

    /// Applies the schedule.
    public func epochWillBegin(_ epoch: Int, model: any TrainableModel) throws {
        guard let optimizer = model.optimizer else { return }
        let rate = schedule(epoch, optimizer.learningRate)
        guard rate.isFinite, rate >= 0 else {
            throw TrainingError.invalidArgument(name: "learning rate", value: "\(rate)", reason: "the schedule must give a finite, non-negative rate")
        }
        optimizer.learningRate = rate
        rates.append(rate)
    }
}

/// Writes the history to a CSV file after every epoch (`epoch,loss,...`), replacing the file atomically.
public final class CSVLogger: Callback {
    /// The file written.
    public let url: URL
    private var rows: [String] = []
    private var columns: [String] = []

    /// Creates a logger writing to `url`.
    public init(url: URL) { self.url = url }

    /// Starts a new file.
    public func trainingWillBegin(model: any TrainableModel) throws {
        rows = []
        columns = []
    }

    /// Appends the epoch's row and rewrites the file.
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        if columns.isEmpty { columns = logs.keys.sorted { ($0.hasPrefix("val_") ? 1 : 0, $0) < ($1.hasPrefix("val_") ? 1 : 0, $1) } }
        rows.append(([String(epoch)] + columns.map { logs[$0].map { "\($0)" } ?? "" }).joined(separator: ","))
        let text = (["epoch," + columns.joined(separator: ",")] + rows).joined(separator: "\n") + "\n"
        try writeAtomically(Data(text.utf8), to: url)
        return .proceed
    }
}
