import Graph

/// Lowers the learning rate when a monitored quantity stops improving (Keras' `ReduceLROnPlateau`).
///
/// After `patience` epochs without an improvement of more than `minimumDelta`, the rate becomes
/// `max(rate · factor, minimumLearningRate)`; then `cooldown` epochs pass before waiting starts again.
public final class ReduceLROnPlateau: Callback {
    /// The log entry watched (`"val_loss"` by default).
    public let monitor: String
    /// What the rate is multiplied by, in (0, 1).
    public let factor: Float
    /// Epochs without improvement before the rate is lowered.
    public let patience: Int
    /// Whether smaller or larger is better.
    public let mode: MonitorMode
    /// The smallest change that counts as an improvement.
    public let minimumDelta: Float
    /// Epochs after a reduction during which no waiting is counted.
    public let cooldown: Int
    /// The rate is never lowered below this.
    public let minimumLearningRate: Float
    /// The epochs after which the rate was lowered, with the new rate.
    public private(set) var reductions: [(epoch: Int, learningRate: Float)] = []
    private var best: Float?
    private var wait = 0
    private var cooldownLeft = 0

    /// Creates the callback with Keras' defaults.
    public init(monitor: String = "val_loss", factor: Float = 0.1, patience: Int = 10, mode: MonitorMode = .automatic,
                minimumDelta: Float = 1e-4, cooldown: Int = 0, minimumLearningRate: Float = 0) {
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.mode = mode
        self.minimumDelta = minimumDelta
        self.cooldown = cooldown
        self.minimumLearningRate = minimumLearningRate
    }

    /// Checks the settings and starts afresh.
    public func trainingWillBegin(model: any TrainableModel) throws {
        let checks: [(Bool, String, String, String)] = [
            (factor > 0 && factor < 1, "factor", "\(factor)", "must lie in (0, 1)"),
            (patience >= 0, "patience", "\(patience)", "must not be negative"),
            (cooldown >= 0, "cooldown", "\(cooldown)", "must not be negative"),
            (minimumDelta >= 0 && minimumDelta.isFinite, "minimumDelta", "\(minimumDelta)", "must be finite and not negative"),
            (minimumLearningRate >= 0 && minimumLearningRate.isFinite, "minimumLearningRate", "\(minimumLearningRate)",
             "must be finite and not negative"),
        ]
        if let (_, name, value, reason) = checks.first(where: { !$0.0 }) {
            throw TrainingError.invalidArgument(name: "ReduceLROnPlateau.\(name)", value: value, reason: reason)
        }
        (best, wait, cooldownLeft) = (nil, 0, 0)
        reductions = []
    }

    /// Counts the epoch and lowers the rate when the wait reaches `patience`.
    public func epochDidEnd(_ epoch: Int, logs: [String: Float], model: any TrainableModel) throws -> CallbackDecision {
        guard let current = logs[monitor] else {
            throw TrainingError.invalidArgument(name: "ReduceLROnPlateau.monitor", value: monitor,
                                                reason: "no such log entry; the logs hold \(logs.keys.sorted())")
        }
        if cooldownLeft > 0 {
            cooldownLeft -= 1
            wait = 0
        }
        if best.map({ mode.isImprovement(current, over: $0, minimumDelta: minimumDelta, monitor: monitor) }) ?? true {
            best = current
            wait = 0
        } else if cooldownLeft == 0 {
            wait += 1
            if wait >= patience, let optimizer = model.optimizer, optimizer.learningRate > minimumLearningRate {
                optimizer.learningRate = max(optimizer.learningRate * factor, minimumLearningRate)
                reductions.append((epoch, optimizer.learningRate))
                cooldownLeft = cooldown
                wait = 0
            }
        }
        return .proceed
    }
}
