import Graph
import Layers

// The PyTorch and Keras names of a model's weights, and the conversion between their layouts and Unroll's.
// The public entry points and the full naming rules are on `Sequential` (Train, Sequential+Archive.swift).

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
        case let layer as any ArchivableLayer where layer.directions.count == 2:
            let (forward, backward) = (layer.directions[0], layer.directions[1])
            guard let forwardCell = forward.cell as? any PyTorchConvertible,
                  let backwardCell = backward.cell as? any PyTorchConvertible else {
                throw ModelArchiveError.unsupportedLayer(typeName: "\(layer.typeName) of \(forward.layer.typeName)")
            }
            return [cellWeights(forwardCell, prefix: prefix, suffix: "_l0"),
                    cellWeights(backwardCell, prefix: prefix, suffix: "_l0_reverse")]
        case let layer as any ArchivableLayer where layer.directions.count == 1:
            let cell = layer.directions[0].cell
            if let cell = cell as? any PyTorchConvertible {
                return [cellWeights(cell, prefix: prefix, suffix: "_l0")]
            }
            if let stack = (cell as? any ArchivableCell)?.stackedCells {
                return try stack.enumerated().map { index, cell in
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
        let directions = (layer as? any ArchivableLayer)?.directions ?? []
        if directions.count == 2 {
            let inner = LayerNames.snakeCase(directions[0].layer.typeName)
            return kerasParameters(of: directions[0].layer, path: "\(path)/forward_\(inner)")
                + kerasParameters(of: directions[1].layer, path: "\(path)/backward_\(inner)")
        }
        if directions.count == 1, let stack = (directions[0].cell as? any ArchivableCell)?.stackedCells {
            return stack.enumerated().flatMap { index, cell in
                LayerNames.uniquelyNamed(cell.parameters, path: "\(path)/cell_\(index)")
            }
        }
        return LayerNames.uniquelyNamed(layer.parameters, path: path)
    }
}
