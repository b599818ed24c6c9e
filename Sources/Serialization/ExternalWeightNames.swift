import Graph
import Layers

// The PyTorch and Keras names of a model's weights, and the conversion between their layouts and Unroll's.
// The public entry points and the full naming rules are on `Sequential` (Train, Sequential+Archive.swift).

/// Access to the parts of generic layers that weight naming needs, whatever their cell type.
protocol RecurrentLayerAccess: Layer {
    /// The cell run at every step.
    var anyCell: any RecurrentCell { get }
}

/// Access to both directions of a ``Bidirectional``, whatever its cell type.
protocol BidirectionalAccess: Layer {
    /// The forward and backward layers.
    var directions: (forward: any RecurrentLayerAccess, backward: any RecurrentLayerAccess) { get }
}

/// Access to the cells of a ``StackedCells``, whatever their type.
protocol CellStack {
    /// The cells, lowest first.
    var stackedCells: [any RecurrentCell] { get }
}

extension RNN: RecurrentLayerAccess {
    var anyCell: any RecurrentCell { cell }
}

extension Bidirectional: BidirectionalAccess {
    var directions: (forward: any RecurrentLayerAccess, backward: any RecurrentLayerAccess) { (forward, backward) }
}

extension StackedCells: CellStack {
    var stackedCells: [any RecurrentCell] { cells }
}

/// Some of a layer's weights as an outside format names and lays them out.
package struct ExternalWeights {
    /// The current values under their full names, in the format's layout (the expected names and shapes).
    package var tensors: [String: Tensor]
    /// Sets the parameters from a dictionary holding every name of ``tensors`` with its shape.
    package var assign: ([String: Tensor]) throws -> Void
}

/// The maps between a list of built layers and the PyTorch or Keras names of their weights.
package enum ExternalWeightNames {
    /// Returns the tensors of every group, under their full names.
    package static func export(_ groups: [ExternalWeights]) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for group in groups { result.merge(group.tensors) { first, _ in first } }
        return result
    }

    /// Sets every group's parameters from `tensors`, checking all names and shapes before any parameter changes.
    ///
    /// - Throws: ``WeightError`` naming a missing tensor or one of the wrong shape,
    ///   ``ModelArchiveError/unexpectedTensors(file:names:)`` for tensors no group has a place for.
    package static func assign(_ groups: [ExternalWeights], from tensors: [String: Tensor], source: String) throws {
        var expected = Set<String>()
        for group in groups {
            for (name, tensor) in group.tensors.sorted(by: { $0.key < $1.key }) {
                expected.insert(name)
                guard let given = tensors[name] else { throw WeightError.missing(name: "\(name) (in \(source))") }
                guard given.shape == tensor.shape else {
                    throw WeightError.shapeMismatch(name: "\(name) (in \(source))", expected: tensor.shape, actual: given.shape)
                }
            }
        }
        let unexpected = tensors.keys.filter { !expected.contains($0) }.sorted()
        guard unexpected.isEmpty else { throw ModelArchiveError.unexpectedTensors(file: source, names: unexpected) }
        for group in groups { try group.assign(tensors) }
    }

    /// Returns the weights of built layers named as PyTorch names them, `"<layer name>.<PyTorch name>"`.
    ///
    /// - Throws: ``ModelArchiveError/unsupportedLayer(typeName:)`` for a layer with parameters but no PyTorch names.
    package static func pyTorch(layers: [any Layer], names: [String]) throws -> [ExternalWeights] {
        try zip(layers, names).flatMap { layer, name in try pyTorchWeights(of: layer, prefix: name + ".") }
    }

    private static func pyTorchWeights(of layer: any Layer, prefix: String) throws -> [ExternalWeights] {
        switch layer {
        case let dense as Dense:
            guard let kernel = dense.kernel else { throw WeightError.notBuilt(layer: dense.typeName) }
            var tensors = [prefix + "weight": kernel.value.transposed()]
            if let bias = dense.bias { tensors[prefix + "bias"] = bias.value }
            return [ExternalWeights(tensors: tensors) { source in
                if let weight = source[prefix + "weight"] { kernel.value = weight.transposed() }
                if let bias = dense.bias, let value = source[prefix + "bias"] { bias.value = value }
            }]
        case let embedding as Embedding:
            return [ExternalWeights(tensors: [prefix + "weight": embedding.table.value]) { source in
                if let value = source[prefix + "weight"] { embedding.table.value = value }
            }]
        case let bidirectional as any BidirectionalAccess:
            let (forward, backward) = bidirectional.directions
            guard let forwardCell = forward.anyCell as? any PyTorchConvertible,
                  let backwardCell = backward.anyCell as? any PyTorchConvertible else {
                throw ModelArchiveError.unsupportedLayer(typeName: "\(layer.typeName) of \(forward.typeName)")
            }
            return [cellWeights(forwardCell, prefix: prefix, suffix: "_l0"),
                    cellWeights(backwardCell, prefix: prefix, suffix: "_l0_reverse")]
        case let recurrent as any RecurrentLayerAccess:
            if let cell = recurrent.anyCell as? any PyTorchConvertible {
                return [cellWeights(cell, prefix: prefix, suffix: "_l0")]
            }
            if let stack = recurrent.anyCell as? any CellStack {
                return try stack.stackedCells.enumerated().map { index, cell in
                    guard let cell = cell as? any PyTorchConvertible else {
                        throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
                    }
                    return cellWeights(cell, prefix: prefix, suffix: "_l\(index)")
                }
            }
            throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName)
        default:
            guard layer.parameters.isEmpty else { throw ModelArchiveError.unsupportedLayer(typeName: layer.typeName) }
            return []
        }
    }

    private static func cellWeights(_ cell: any PyTorchConvertible, prefix: String, suffix: String) -> ExternalWeights {
        let own = cell.pyTorchStateDict(suffix: suffix)
        return ExternalWeights(tensors: Dictionary(uniqueKeysWithValues: own.map { (prefix + $0.key, $0.value) })) { source in
            var unprefixed: [String: Tensor] = [:]
            for name in own.keys { unprefixed[name] = source[prefix + name] }
            try cell.loadPyTorch(unprefixed, suffix: suffix)
        }
    }

    /// Returns the weights of built layers named as Keras names them, `"<layer name>/<Keras weight name>"`.
    package static func keras(layers: [any Layer], names: [String]) -> [ExternalWeights] {
        zip(layers, names).flatMap { layer, name in
            kerasParameters(of: layer, path: name).map { name, parameter in
                ExternalWeights(tensors: [name: parameter.value]) { source in
                    if let value = source[name] { parameter.value = value }
                }
            }
        }
    }

    private static func kerasParameters(of layer: any Layer, path: String) -> [(String, Parameter)] {
        if let bidirectional = layer as? any BidirectionalAccess {
            let (forward, backward) = bidirectional.directions
            let inner = LayerNames.snakeCase(forward.typeName)
            return kerasParameters(of: forward, path: "\(path)/forward_\(inner)")
                + kerasParameters(of: backward, path: "\(path)/backward_\(inner)")
        }
        if let recurrent = layer as? any RecurrentLayerAccess, let stack = recurrent.anyCell as? any CellStack {
            return stack.stackedCells.enumerated().flatMap { index, cell in
                LayerNames.uniquelyNamed(cell.parameters, path: "\(path)/cell_\(index)")
            }
        }
        return LayerNames.uniquelyNamed(layer.parameters, path: path)
    }
}
