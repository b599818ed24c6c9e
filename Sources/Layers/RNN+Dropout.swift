import Graph

/// Dropout inside a recurrent layer, with Keras' semantics: in training, one mask per sequence for the input
/// features and one for the previous hidden state, each drawn once per call and reused at every time step
/// (Gal and Ghahramani's variational dropout); nothing in inference (no tape, or a tape not training).
extension RNN {
    /// Restarts the generator of the dropout masks (reproducible masks for a given seed).
    public func seedDropout(_ seed: UInt64) { dropoutGenerator = SeededGenerator(seed: seed) }

    /// Whether this call draws dropout masks.
    func isDropping(_ input: Node) -> Bool {
        (dropout > 0 || recurrentDropout > 0) && input.tape?.isTraining == true
    }

    /// The input mask `[batch, 1, features]` and the recurrent mask `[batch, hiddenSize]` for one call, each
    /// entry 0 or `1 / (1 - rate)` (inverted dropout), or `nil` when not dropping.
    func dropoutMasks(for input: Node) -> (input: Node?, recurrent: Node?) {
        guard isDropping(input) else { return (nil, nil) }
        checkSettings(dropoutSettingErrors)
        func mask(_ shape: [Int], rate: Float) -> Node? {
            guard rate > 0 else { return nil }
            let keep = 1 - rate
            let count = shape.reduce(1, *)
            return input.onSameTape(Tensor(shape: shape, scalars: (0..<count).map { _ in
                dropoutGenerator.nextUnitFloat() < keep ? 1 / keep : 0
            }))
        }
        return (mask([input.shape[0], 1, input.shape[2]], rate: dropout),
                mask([input.shape[0], cell.hiddenSize], rate: recurrentDropout))
    }

    /// `dropout` and `recurrentDropout` must lie in [0, 1).
    var dropoutSettingErrors: [SettingError] {
        SettingError.unless(dropout >= 0 && dropout < 1, typeName, "dropout", dropout, "must lie in [0, 1)")
            + SettingError.unless(recurrentDropout >= 0 && recurrentDropout < 1, typeName, "recurrentDropout",
                                  recurrentDropout, "must lie in [0, 1)")
    }
}
