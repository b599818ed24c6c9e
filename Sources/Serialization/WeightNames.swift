import Graph
import Layers

// One walk over a model's layers gives every parameter a structured identity (`WeightIdentity`); each
// format's name for it is derived from that identity, and its layout from the tables keyed by (kind, part):
// `PyTorchLayout.table` (Layers) and `WeightIdentity.kerasVariables` below. The public entry points and the
// naming rules for users are on `Sequential` (Train, Sequential+Archive.swift); Docs/Architecture.md has the table.

/// The direction of a bidirectional layer that a parameter belongs to.
package enum WeightDirection: Sendable {
    case forward, backward
}

/// What owns a group of a layer's parameters: the layer itself, or the cell of one direction or stack position.
package struct WeightOwner {
    /// The model's name for the layer (`lstm`, `lstm_1`).
    package var layerName: String
    /// The model's layer (a `Bidirectional` for both its directions).
    package var layer: any Layer
    /// The direction, for a bidirectional layer's cells.
    package var direction: WeightDirection?
    /// The kind of the layer a direction runs (`LSTM`; a stack's `StackedLSTM`), for a cell.
    package var recurrentTypeName: String?
    /// The position in a stack of cells, lowest first.
    package var stackIndex: Int?
    /// The kind of the cell or layer; `nil` for a custom one.
    package var kind: WeightKind?
    /// The owner's parameters, in order.
    package var parameters: [Parameter]
}

/// Where one parameter sits in a model: the identity every weight name is derived from.
package struct WeightIdentity {
    /// The cell or layer that owns the parameter.
    package var owner: WeightOwner
    /// The parameter's own name, its part of the layer or cell (`kernel`, `recurrent_kernel`, `bias`, ...).
    package var part: String
    /// The position among the owner's parameters.
    package var position: Int
    /// The parameter.
    package var parameter: Parameter
    /// Unroll's name, the key in `model.safetensors` and weights files: `<layer>/<part>`, a repeated part getting
    /// `_1`, `_2` within the layer (`bidirectional/kernel_1`).
    package var unrollName: String
    /// The name in Keras-named dictionaries: the owner's path (`bidirectional/forward_lstm`, `stacked_gru/cell_1`)
    /// and the part, a repeated part getting `_1`, `_2` within the owner.
    package var kerasName: String

    /// PyTorch's names (two for a split bias), `<layer>.<name>` with `_l<stack position>` and `_reverse` on a
    /// cell's; `nil` when PyTorch has no twin (a custom layer or cell, a bidirectional stack, an echo state network).
    package var pyTorchNames: [String]? {
        guard let layout = pyTorchLayout else { return nil }
        let suffix = owner.kind?.isCell == true
            ? PyTorchLayout.suffix(layerIndex: owner.stackIndex ?? 0, reverse: owner.direction == .backward) : ""
        return layout.names.map { "\(owner.layerName).\($0)\(suffix)" }
    }

    /// The PyTorch layout from the table, `nil` when PyTorch has no twin.
    package var pyTorchLayout: PyTorchLayout? {
        guard let kind = owner.kind, !(owner.direction != nil && owner.stackIndex != nil) else { return nil }
        return PyTorchLayout.table[kind]?[part]
    }

    /// The kinds Keras weights files hold, with their variables' group below `layers/<layer>` in the order of
    /// `vars/<i>`; Keras' layout is Unroll's, so nothing converts.
    package static let kerasVariables: [WeightKind: (group: String, parts: [String])] = [
        .dense: ("vars", ["kernel", "bias"]),
        .dropout: ("vars", []),
        .embedding: ("vars", ["embeddings"]),
        .simpleRNN: ("cell/vars", ["kernel", "recurrent_kernel", "bias"]),
        .lstm: ("cell/vars", ["kernel", "recurrent_kernel", "bias"]),
        .gru: ("cell/vars", ["kernel", "recurrent_kernel", "bias"]),
        .gruResetBefore: ("cell/vars", ["kernel", "recurrent_kernel", "bias"]),
    ]
}

/// The walk over a model's layers and the weight dictionaries derived from it.
package enum WeightNames {
    /// Returns every parameter of `layers` (named `names`) with its identity, in the order of the layers' parameters.
    package static func identities(of layers: [any Layer], names: [String]) -> [WeightIdentity] {
        zip(layers, names).flatMap { layer, name in
            var seen: [String: Int] = [:]
            return owners(of: layer, name: name).flatMap { owner in
                var seenInOwner: [String: Int] = [:]
                var path = name
                if let direction = owner.direction, let typeName = owner.recurrentTypeName {
                    path += "/\(direction == .forward ? "forward" : "backward")_\(LayerNames.snakeCase(typeName))"
                }
                if let index = owner.stackIndex { path += "/cell_\(index)" }
                return owner.parameters.enumerated().map { position, parameter in
                    WeightIdentity(owner: owner, part: parameter.name, position: position, parameter: parameter,
                                   unrollName: "\(name)/\(parameter.name)" + numbered(parameter.name, &seen),
                                   kerasName: "\(path)/\(parameter.name)" + numbered(parameter.name, &seenInOwner))
                }
            }
        }
    }

    /// `""` the first time a name is seen, then `_1`, `_2`, ...
    private static func numbered(_ name: String, _ seen: inout [String: Int]) -> String {
        let count = seen[name, default: 0]
        seen[name] = count + 1
        return count == 0 ? "" : "_\(count)"
    }

    /// A layer's owners, seeing through `RNN`, `Bidirectional` and `StackedCells`, in parameter order.
    private static func owners(of layer: any Layer, name: String) -> [WeightOwner] {
        let directions = (layer as? any ArchivableLayer)?.directions ?? []
        guard !directions.isEmpty else {
            return [WeightOwner(layerName: name, layer: layer, kind: WeightKind(of: layer), parameters: layer.parameters)]
        }
        return zip(directions, directions.count == 2 ? [WeightDirection.forward, .backward] : [nil] as [WeightDirection?])
            .flatMap { run, direction in
                let cells = (run.cell as? any ArchivableCell)?.stackedCells.map { $0.enumerated().map { ($0, $1) } }
                    ?? [(nil, run.cell)]
                return cells.map { index, cell in
                    WeightOwner(layerName: name, layer: layer, direction: direction, recurrentTypeName: run.layer.typeName,
                                stackIndex: index, kind: WeightKind(of: cell), parameters: cell.parameters)
                }
            }
    }

    // MARK: Dictionaries

    /// Returns the weights named and laid out as PyTorch has them.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a parameter PyTorch has no twin for.
    package static func pyTorchTensors(_ identities: [WeightIdentity]) throws -> [String: Tensor] {
        try Dictionary(pyTorchEntries(identities).flatMap { entry in zip(entry.names, entry.current) }) { a, _ in a }
    }

    /// Sets every parameter from PyTorch-named tensors; see ``assign(_:from:source:)`` for the checks.
    package static func setPyTorch(_ identities: [WeightIdentity], from tensors: [String: Tensor], source: String) throws {
        try assign(try pyTorchEntries(identities), from: tensors, source: source)
    }

    /// Returns the weights under their Keras-dictionary names (Keras' layout is Unroll's).
    package static func kerasTensors(_ identities: [WeightIdentity]) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: identities.map { ($0.kerasName, $0.parameter.value) })
    }

    /// Sets every parameter from Keras-named tensors; see ``assign(_:from:source:)`` for the checks.
    package static func setKeras(_ identities: [WeightIdentity], from tensors: [String: Tensor], source: String) throws {
        let entries = identities.map { identity in
            ExternalParameter(identity.parameter, names: [identity.kerasName], current: [identity.parameter.value]) { $0[0] }
        }
        try assign(entries, from: tensors, source: source)
    }

    private static func pyTorchEntries(_ identities: [WeightIdentity]) throws -> [ExternalParameter] {
        try identities.map { identity in
            guard let layout = identity.pyTorchLayout, let names = identity.pyTorchNames else {
                let owner = identity.owner
                let typeName = owner.direction == nil ? owner.layer.typeName
                    : "\(owner.layer.typeName) of \(owner.recurrentTypeName ?? "?")"
                throw ModelArchiveError.unsupportedLayer(typeName: typeName)
            }
            return layout.external(identity.parameter, names: names)
        }
    }

    /// Sets every parameter from `tensors`, checking all names and shapes, and that no tensor is left over,
    /// before any parameter changes.
    ///
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape,
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors no parameter has a place for.
    private static func assign(_ entries: [ExternalParameter], from tensors: [String: Tensor], source: String) throws {
        let values = try ExternalParameter.values(of: entries, from: tensors, source: source)
        let expected = Set(entries.flatMap(\.names))
        let unexpected = tensors.keys.filter { !expected.contains($0) }.sorted()
        guard unexpected.isEmpty else { throw ModelArchiveError.unexpectedTensors(file: source, names: unexpected) }
        for (entry, value) in zip(entries, values) { entry.parameter.value = value }
    }
}

extension WeightIdentity {
    /// Where a Keras weights file keeps the parameter: its group, `layers/<layer>[/forward_layer|/backward_layer]/`
    /// and the kind's group (`vars`, `cell/vars`), and its index there (the dataset `<group>/<index>`).
    ///
    /// - Throws: ``KerasError/cannotExport(reason:)`` for a parameter Keras files have no place for.
    package func kerasVariable() throws -> (group: String, index: Int) {
        guard let kind = owner.kind, owner.stackIndex == nil, let variables = Self.kerasVariables[kind],
              variables.parts.indices.contains(position), variables.parts[position] == part else {
            throw KerasError.cannotExport(reason: owner.recurrentTypeName.map {
                "layer '\(owner.layerName)': \($0) cells have no Keras counterpart"
            } ?? "layer '\(owner.layerName)' (\(owner.layer.typeName)) has no Keras counterpart")
        }
        let directionGroup = owner.direction.map { $0 == .forward ? "/forward_layer" : "/backward_layer" } ?? ""
        return ("layers/\(owner.layerName)\(directionGroup)/\(variables.group)", position)
    }
}
