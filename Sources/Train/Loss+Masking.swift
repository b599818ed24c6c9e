import Graph

extension Loss {
    /// Returns the loss averaged over the real steps only: `Σ mask ⊙ loss_step / Σ mask`, where `loss_step`
    /// is the loss of each `[batch, time]` position (reduced over the last axis) and `mask` is `[batch, time]`
    /// (Keras' masked loss). Padded steps contribute neither to the value nor to any gradient.
    public func callAsFunction(_ prediction: Node, _ target: Node, mask: Tensor) -> Node {
        let steps = perStep(prediction, target)
        check(steps.shape == mask.shape, "\(name): a mask \(mask.shape) for per-step losses \(steps.shape)")
        let weights = prediction.onSameTape(mask)
        return (steps * weights).sum() * (1 / Swift.max(mask.scalars.reduce(0, +), 1))
    }

    /// The loss of every position, `[batch, time]`: the last axis reduced as the full loss reduces it.
    func perStep(_ prediction: Node, _ target: Node) -> Node {
        let last = prediction.shape.count - 1
        switch self {
        case .meanSquaredError:
            return square(prediction - target).mean(alongAxes: [last])
        case .meanAbsoluteError:
            return abs(prediction - target).mean(alongAxes: [last])
        case .binaryCrossEntropy(let fromLogits):
            if fromLogits {
                let x = prediction
                return (relu(x) - x * target + log(exp(-abs(x)) + 1)).mean(alongAxes: [last])
            }
            let p = prediction.clamped(to: Loss.epsilon...(1 - Loss.epsilon))
            return -(target * log(p) + (1 - target) * log(1 - p)).mean(alongAxes: [last])
        case .categoricalCrossEntropy(let fromLogits):
            return -(target * Loss.logProbabilities(prediction, fromLogits: fromLogits)).sum(alongAxes: [last])
        case .sparseCategoricalCrossEntropy(let fromLogits):
            let oneHot = prediction.onSameTape(target.value.oneHot(classes: prediction.shape[last]))
            return -(oneHot * Loss.logProbabilities(prediction, fromLogits: fromLogits)).sum(alongAxes: [last])
        }
    }

    static func logProbabilities(_ prediction: Node, fromLogits: Bool) -> Node {
        fromLogits ? prediction.logSoftmax(alongAxis: prediction.shape.count - 1)
            : log(prediction.clamped(to: epsilon...(1 - epsilon)))
    }
}
