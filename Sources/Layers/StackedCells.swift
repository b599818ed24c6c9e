import Graph

/// The states of a stack of cells, lowest layer first.
public struct StackedState<Inner: RecurrentState>: RecurrentState {
    /// One state per layer.
    public var layers: [Inner]

    /// Creates a stacked state from per-layer states.
    public init(layers: [Inner]) { self.layers = layers }

    /// Every layer's nodes, lowest layer first.
    public var nodes: [Node] { layers.flatMap(\.nodes) }

    /// Splits nodes into per-layer states of ``RecurrentState/nodeCount`` nodes each.
    public init(nodes: [Node]) {
        let size = Inner.nodeCount
        layers = stride(from: 0, to: nodes.count, by: size).map { Inner(nodes: Array(nodes[$0..<($0 + size)])) }
    }

    /// Not fixed: it depends on the number of layers (`nodes.count` of an instance says it).
    public static var nodeCount: Int { Inner.nodeCount }
}

/// Several cells applied one after another within each time step: the stacked-cells form of a deep
/// recurrent network (Keras' `StackedRNNCells`). Layer `l + 1` reads layer `l`'s output of the same step.
public final class StackedCells<Cell: RecurrentCell>: RecurrentCell {
    /// The cells, lowest first.
    public let cells: [Cell]

    /// Creates a stack from cells, lowest first.
    public init(_ cells: [Cell]) {
        self.cells = cells
    }

    /// The cells' kind.
    public var typeName: String { "Stacked" + (cells.first?.typeName ?? "") }
    /// The top cell's output size.
    public var hiddenSize: Int { cells.last?.hiddenSize ?? 0 }
    /// At least one cell, each with valid settings.
    public var invalidSettings: [SettingError] {
        SettingError.unless(!cells.isEmpty, typeName, "cells", "[]", "needs at least one cell")
            + cells.flatMap(\.invalidSettings)
    }
    /// Every cell's parameters, lowest first.
    public var parameters: [Parameter] { cells.flatMap(\.parameters) }
    /// The lowest cell's input size.
    public var inputSize: Int? { cells.first?.inputSize }

    /// Builds each cell on the output size of the one below.
    public func build(inputSize: Int) {
        checkSettings(invalidSettings)
        var size = inputSize
        for cell in cells {
            cell.build(inputSize: size)
            size = cell.hiddenSize
        }
    }

    /// The lowest cell's projection, for all steps at once.
    public func projectInput(_ input: Node) -> Node { cells[0].projectInput(input) }

    /// Every cell's zero state.
    public func zeroState(batchSize: Int) -> StackedState<Cell.State> {
        StackedState(layers: cells.map { $0.zeroState(batchSize: batchSize) })
    }

    /// One step through every cell.
    public func callAsFunction(_ projectedInput: Node, state: StackedState<Cell.State>)
        -> (output: Node, state: StackedState<Cell.State>) {
        var input = projectedInput
        var next: [Cell.State] = []
        for (l, cell) in cells.enumerated() {
            let (output, state) = cell(l == 0 ? input : cell.projectInput(input), state: state.layers[l])
            next.append(state)
            input = output
        }
        return (input, StackedState(layers: next))
    }

    /// Applies every cell's constraints.
    public func applyConstraints() { cells.forEach { $0.applyConstraints() } }
}
