/// A cell that can make an unbuilt twin with the same settings and freshly drawn weights.
///
/// `Bidirectional` uses it when one layer object is given for both directions (`let lstm = LSTM(...)`,
/// `Bidirectional(lstm)`): the backward direction gets its own copy, as Keras copies the layer.
public protocol ReplicableCell: RecurrentCell {
    /// Returns a new, unbuilt cell with the same settings; its weights will be drawn from a new seed.
    func freshCopy() -> Self
}

extension LSTMCell: ReplicableCell {
    /// A new LSTM cell with the same settings.
    public func freshCopy() -> LSTMCell { LSTMCell(hiddenSize: hiddenSize, unitForgetBias: unitForgetBias) }
}

extension GRUCell: ReplicableCell {
    /// A new GRU cell with the same settings.
    public func freshCopy() -> GRUCell { GRUCell(hiddenSize: hiddenSize, resetAfter: resetAfter) }
}

extension SimpleRNNCell: ReplicableCell {
    /// A new simple recurrent cell with the same settings.
    public func freshCopy() -> SimpleRNNCell { SimpleRNNCell(hiddenSize: hiddenSize, activation: activation) }
}

extension PeepholeLSTMCell: ReplicableCell {
    /// A new peephole LSTM cell with the same settings.
    public func freshCopy() -> PeepholeLSTMCell { PeepholeLSTMCell(hiddenSize: hiddenSize) }
}

extension IndRNNCell: ReplicableCell {
    /// A new IndRNN cell with the same settings (the recurrent bound included).
    public func freshCopy() -> IndRNNCell { IndRNNCell(hiddenSize: hiddenSize, recurrentBound: recurrentBound) }
}

extension StackedCells: ReplicableCell where Cell: ReplicableCell {
    /// A new stack of fresh copies of the cells.
    public func freshCopy() -> StackedCells<Cell> { StackedCells(cells.map { $0.freshCopy() }) }
}

/// Returns a fresh copy of `cell` when its type can make one.
func freshCopy<Cell: RecurrentCell>(of cell: Cell) -> Cell? {
    func copy<Replicable: ReplicableCell>(_ cell: Replicable) -> any RecurrentCell { cell.freshCopy() }
    guard let replicable = cell as? any ReplicableCell else { return nil }
    return copy(replicable) as? Cell
}
