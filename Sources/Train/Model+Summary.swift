import Foundation
import Graph
import Layers

/// One edge of a model's layer graph: a tensor from one layer call into another.
public struct LayerEdge: Equatable, Sendable {
    /// The producing layer's name.
    public let from: String
    /// The consuming layer's name.
    public let to: String
    /// The tensor's shape without the batch axis.
    public let shape: [Int]
}

extension Model {
    /// Every tensor passed from one layer to another, in call order (shared layers give one edge per call).
    public var edges: [LayerEdge] {
        calls.flatMap { call in
            call.inputs.map { LayerEdge(from: name(of: $0.call.layer), to: name(of: call.layer), shape: $0.shape) }
        }
    }

    /// Keras' "connected to" entries of a layer: `producer[call][output]` for every input of every call.
    func connections(of layer: any Layer) -> [String] {
        callsInOrder(of: layer).flatMap { call in
            call.inputs.map { input in
                let producer = input.call.layer
                let node = callsInOrder(of: producer).firstIndex { $0 === input.call } ?? 0
                return "\(name(of: producer))[\(node)][\(input.outputIndex)]"
            }
        }
    }

    /// The calls of a layer in this model, in the order they were made (Keras' node indices).
    func callsInOrder(of layer: any Layer) -> [LayerCall] {
        calls.filter { $0.layer === layer }.sorted { $0.creationIndex < $1.creationIndex }
    }

    /// Returns Keras' functional summary: each layer's name and type, output shape, parameter count and the
    /// tensors it is connected to (`lstm[0][1]`: output 1 of the first call of `lstm`), then the totals.
    ///
    /// ```
    /// lstm_1 (LSTM)   (None, 4, 128)   72,192   input_layer_1[0][0]
    ///                                           lstm[0][1]
    ///                                           lstm[0][2]
    /// ```
    public func summary() -> String {
        let rows: [(String, String, String, [String])] = zip(layers, layerNames).map { layer, layerName in
            let shapes = callsInOrder(of: layer).first?.outputShapes ?? []
            let shape = shapes.count == 1 ? Sequential.format(shapes[0]) : "[" + shapes.map(Sequential.format).joined(separator: ", ") + "]"
            let connected = connections(of: layer)
            return ("\(layerName) (\(layer.typeName))", shape,
                    Sequential.grouped(layer.trainableParameterCount + layer.nonTrainableParameterCount),
                    connected.isEmpty ? ["-"] : connected.enumerated().map { $1 + ($0 < connected.count - 1 ? "," : "") })
        }
        let widths = [max(19, rows.map(\.0.count).max() ?? 0), max(17, rows.map(\.1.count).max() ?? 0), 10,
                      max(17, rows.flatMap(\.3).map(\.count).max() ?? 0)]
        func line(_ left: String, _ middle: String, _ right: String, _ fill: String) -> String {
            left + widths.map { String(repeating: fill, count: $0 + 2) }.joined(separator: middle) + right
        }
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let padding = String(repeating: " ", count: max(0, width - text.count))
            return right ? padding + text : text + padding
        }
        func row(_ cells: [String], rightAligned: Int = 2) -> String {
            zip(cells, widths).enumerated().map { index, pair in
                pad(pair.0, pair.1, right: index == rightAligned)
            }.joined(separator: " │ ")
        }
        var out = ["Model: \"\(name)\"", line("┏", "┳", "┓", "━")]
        out.append("┃ " + row(["Layer (type)", "Output Shape", "Param #", "Connected to"]).replacingOccurrences(of: "│", with: "┃") + " ┃")
        out.append(line("┡", "╇", "┩", "━"))
        for (index, entry) in rows.enumerated() {
            for (k, connection) in entry.3.enumerated() {
                let cells = k == 0 ? [entry.0, entry.1, entry.2, connection] : ["", "", "", connection]
                out.append("│ " + row(cells) + " │")
            }
            out.append(index == rows.count - 1 ? line("└", "┴", "┘", "─") : line("├", "┼", "┤", "─"))
        }
        out += Sequential.parameterTotals(of: layers)
        return out.joined(separator: "\n") + "\n"
    }

    /// The total number of parameter scalars (a shared layer's counted once).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Returns the layer graph in Graphviz DOT, one box per layer with its input and output shapes and one
    /// arrow per tensor passed (Keras' `plot_model(show_shapes=True)`).
    public func dot() -> String {
        var out = ["digraph \"\(name)\" {", "  node [shape=record];"]
        for (index, (layer, layerName)) in zip(layers, layerNames).enumerated() {
            let call = callsInOrder(of: layer).first
            let input = call.map { $0.inputs.map { Sequential.format($0.shape) }.joined(separator: ", ") } ?? ""
            let output = call.map { $0.outputShapes.map(Sequential.format).joined(separator: ", ") } ?? ""
            let ports = layer is InputLayer ? "output: \(output)" : "input: \(input)|output: \(output)"
            out.append("  l\(index) [label=\"{\(layerName) (\(layer.typeName))|{\(ports)}}\"];")
        }
        let index = Dictionary(uniqueKeysWithValues: layerNames.enumerated().map { ($1, $0) })
        for edge in edges { out.append("  l\(index[edge.from]!) -> l\(index[edge.to]!);") }
        out.append("}")
        return out.joined(separator: "\n") + "\n"
    }
}
