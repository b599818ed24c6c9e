import Graph

/// A training objective: a scalar node from a batch of predictions and targets.
///
/// Every loss is a composition of graph primitives, so it needs no gradient rule of its own. The
/// cross-entropies take probabilities by default, as in Keras; `fromLogits: true` fuses a stable
/// (log-)softmax or log-sigmoid instead.
public enum Loss: Sendable, Equatable {
    /// `mean((prediction - target)²)` over all elements.
    case meanSquaredError
    /// `mean(|prediction - target|)` over all elements.
    case meanAbsoluteError
    /// `-mean(t·log p + (1 - t)·log(1 - p))`; from logits: `mean(max(x, 0) - x·t + log(1 + e^-|x|))`.
    case binaryCrossEntropy(fromLogits: Bool = false)
    /// `-mean over the batch of Σ t·log p` on the last axis; from logits with a fused log-softmax.
    case categoricalCrossEntropy(fromLogits: Bool = false)
    /// Categorical cross-entropy with class indices `[batch]` (or `[batch, time]`) as targets.
    case sparseCategoricalCrossEntropy(fromLogits: Bool = false)

    /// Probabilities are clipped to `[epsilon, 1 - epsilon]` before a logarithm, as Keras does.
    static let epsilon: Float = 1e-7

    /// The name Keras prints (`"mean_squared_error"`).
    public var name: String {
        switch self {
        case .meanSquaredError: "mean_squared_error"
        case .meanAbsoluteError: "mean_absolute_error"
        case .binaryCrossEntropy: "binary_crossentropy"
        case .categoricalCrossEntropy: "categorical_crossentropy"
        case .sparseCategoricalCrossEntropy: "sparse_categorical_crossentropy"
        }
    }

    /// Returns the scalar loss of `prediction` against `target` (same shape, except for sparse targets).
    public func callAsFunction(_ prediction: Node, _ target: Node) -> Node {
        switch self {
        case .meanSquaredError:
            return square(prediction - target).mean()
        case .meanAbsoluteError:
            return abs(prediction - target).mean()
        case .binaryCrossEntropy(let fromLogits):
            if fromLogits {
                let x = prediction
                return (relu(x) - x * target + log(exp(-abs(x)) + 1)).mean()
            }
            let p = prediction.clamped(to: Loss.epsilon...(1 - Loss.epsilon))
            return -(target * log(p) + (1 - target) * log(1 - p)).mean()
        case .categoricalCrossEntropy(let fromLogits):
            return Loss.crossEntropy(prediction, target, fromLogits: fromLogits)
        case .sparseCategoricalCrossEntropy(let fromLogits):
            let classes = prediction.shape.last!
            return Loss.crossEntropy(prediction, prediction.onSameTape(target.value.oneHot(classes: classes)),
                                     fromLogits: fromLogits)
        }
    }

    private static func crossEntropy(_ prediction: Node, _ target: Node, fromLogits: Bool) -> Node {
        let axis = prediction.shape.count - 1
        let logProbabilities = fromLogits
            ? prediction.logSoftmax(alongAxis: axis)
            : log(prediction.clamped(to: epsilon...(1 - epsilon)))
        let rows = prediction.value.count / prediction.shape[axis]
        return -(target * logProbabilities).sum() * (1 / Float(rows))
    }
}

/// A quantity reported during training, computed on values (not recorded on the tape); cases are named as
/// ``Loss``'s are, and each has a short ``name`` (Keras' metric string) that keys ``History`` and the logs.
public enum Metric: String, Sendable, CaseIterable {
    /// Mean squared error, `"mse"`.
    case meanSquaredError = "mse"
    /// Root mean squared error (the square root of the epoch's mean squared error), `"rmse"`.
    case rootMeanSquaredError = "rmse"
    /// Mean absolute error, `"mae"`.
    case meanAbsoluteError = "mae"
    /// The fraction of correct classes: argmax on the last axis for several classes, a 0.5 threshold
    /// for one output, and class indices as targets when the target has no class axis.
    case accuracy

    /// The key of this metric in ``History`` and the per-epoch logs (`"mse"`, `"val_mse"` for validation).
    public var name: String { rawValue }

    /// Returns the sum over the batch of the metric's per-sample quantity and the number of samples
    /// it averages over (rmse returns squared errors; the caller takes the root of the mean).
    func total(_ prediction: Tensor, _ target: Tensor) -> (sum: Double, count: Int) {
        let p = prediction.scalars
        switch self {
        case .meanSquaredError, .rootMeanSquaredError:
            let t = target.scalars
            // Differences squared in Double: a Float square overflows to infinity beyond about 1.8e19.
            return (zip(p, t).reduce(0.0) { let d = Double($1.0) - Double($1.1); return $0 + d * d }, p.count)
        case .meanAbsoluteError:
            let t = target.scalars
            return (zip(p, t).reduce(0.0) { $0 + Swift.abs(Double($1.0) - Double($1.1)) }, p.count)
        case .accuracy:
            let classes = prediction.shape.last ?? 1
            if classes == 1 {
                let t = target.scalars
                let correct = zip(p, t).filter { ($0.0 >= 0.5) == ($0.1 >= 0.5) }.count
                return (Double(correct), p.count)
            }
            let predicted = prediction.argmax(alongAxis: prediction.rank - 1)
            let truth = target.shape == prediction.shape
                ? target.argmax(alongAxis: target.rank - 1) : target.scalars.map { Int($0) }
            return (Double(zip(predicted, truth).filter { $0 == $1 }.count), predicted.count)
        }
    }
}
