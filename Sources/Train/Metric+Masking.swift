import Graph

extension Metric {
    /// The metric's sum and count over the real steps only: with a mask `[batch, time]` on a per-step output
    /// `[batch, time, ...]`, the positions where the mask is 0 are left out (as Keras' metrics do).
    func total(_ prediction: Tensor, _ target: Tensor, mask: Tensor?) -> (sum: Double, count: Int) {
        guard let mask, prediction.rank >= 3, Array(prediction.shape.prefix(2)) == mask.shape,
              target.rank >= 2, Array(target.shape.prefix(2)) == mask.shape else { return total(prediction, target) }
        let positions = mask.count
        let real = mask.scalars.indices.filter { mask.scalars[$0] != 0 }
        guard !real.isEmpty else { return (0, 0) }
        let flatPrediction = prediction.reshaped(to: [positions] + prediction.shape.dropFirst(2))
        let flatTarget = target.reshaped(to: [positions] + target.shape.dropFirst(2))
        return total(flatPrediction.gathering(real, along: 0), flatTarget.gathering(real, along: 0))
    }
}
