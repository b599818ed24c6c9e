import Foundation
import Layers

extension Sequential {
    /// Returns Keras' summary table: each layer's name and type, output shape (`None` for the batch)
    /// and parameter count, then the total, trainable and non-trainable counts with their sizes.
    ///
    /// ```
    /// lstm (LSTM)      (None, 400)      643,200
    /// dense (Dense)    (None, 8)          3,208
    ///  Total params: 646,408 (2.47 MB)
    /// ```
    public func summary() -> String {
        let shapes: [[Int]]
        do { shapes = try layerShapes() } catch { return "Model: \"\(name)\"\n(cannot build: \(error))\n" }
        let rows = zip(zip(layers, layerNames), shapes).map { pair, shape in
            (("\(pair.1) (\(pair.0.typeName))"), Sequential.format(shape),
             Sequential.grouped(pair.0.trainableParameterCount + pair.0.nonTrainableParameterCount))
        }
        let widths = [max(31, rows.map(\.0.count).max() ?? 0), max(22, rows.map(\.1.count).max() ?? 0), 13]
        func line(_ left: String, _ middle: String, _ right: String, _ fill: String) -> String {
            left + widths.map { String(repeating: fill, count: $0 + 2) }.joined(separator: middle) + right
        }
        func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
            let padding = String(repeating: " ", count: max(0, width - text.count))
            return right ? padding + text : text + padding
        }
        var out = ["Model: \"\(name)\""]
        out.append(line("┏", "┳", "┓", "━"))
        out.append("┃ " + pad("Layer (type)", widths[0]) + " ┃ " + pad("Output Shape", widths[1]) + " ┃ " + pad("Param #", widths[2], right: true) + " ┃")
        out.append(line("┡", "╇", "┩", "━"))
        for (index, row) in rows.enumerated() {
            out.append("│ " + pad(row.0, widths[0]) + " │ " + pad(row.1, widths[1]) + " │ " + pad(row.2, widths[2], right: true) + " │")
            out.append(index == rows.count - 1 ? line("└", "┴", "┘", "─") : line("├", "┼", "┤", "─"))
        }
        out += Sequential.parameterTotals(of: layers)
        return out.joined(separator: "\n") + "\n"
    }

    /// The total number of parameter scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Keras' closing lines: total, trainable and non-trainable parameter counts with their sizes in bytes.
    static func parameterTotals(of layers: [any Layer]) -> [String] {
        let trainable = layers.reduce(0) { $0 + $1.trainableParameterCount }
        let frozen = layers.reduce(0) { $0 + $1.nonTrainableParameterCount }
        return [" Total params: \(grouped(trainable + frozen)) (\(byteSize(4 * (trainable + frozen))))",
                " Trainable params: \(grouped(trainable)) (\(byteSize(4 * trainable)))",
                " Non-trainable params: \(grouped(frozen)) (\(byteSize(4 * frozen)))"]
    }

    /// `646408` → `"646,408"`.
    static func grouped(_ number: Int) -> String {
        let digits = Array(String(number))
        var result = ""
        for (i, digit) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }

    /// Bytes in Keras' units: `2585632` → `"2.47 MB"` (powers of 1024, two decimals).
    static func byteSize(_ bytes: Int) -> String {
        let units = ["B", "KB", "MB", "GB"]
        var value = Double(bytes), unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return String(format: "%.2f %@", value, units[unit])
    }
}
