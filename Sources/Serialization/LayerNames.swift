import Graph
import Layers

/// The names of a model's layers and of their weights: the keys of weight files and model directories.
package enum LayerNames {
    /// Keras-style layer names: the type in snake case, numbered from the second of a kind (`lstm`, `lstm_1`).
    package static func names(of layers: [any Layer]) -> [String] {
        var seen: [String: Int] = [:]
        return layers.map { layer in
            let base = snakeCase(layer.typeName)
            let count = seen[base, default: 0]
            seen[base] = count + 1
            return count == 0 ? base : "\(base)_\(count)"
        }
    }

    /// Returns a type name in snake case, as Keras names layers: `PeepholeLSTM` becomes `peephole_lstm`.
    package static func snakeCase(_ name: String) -> String {
        var result = ""
        let characters = Array(name)
        for (i, character) in characters.enumerated() {
            if character.isUppercase, i > 0,
               characters[i - 1].isLowercase || (i + 1 < characters.count && characters[i + 1].isLowercase && characters[i - 1].isUppercase) {
                result += "_"
            }
            result += character.lowercased()
        }
        return result
    }

    /// Names parameters `path/name`, a repeated name getting `_1`, `_2` (`lstm/kernel`, `bidirectional/kernel_1`).
    package static func uniquelyNamed(_ parameters: [Parameter], path: String) -> [(String, Parameter)] {
        var seen: [String: Int] = [:]
        return parameters.map { parameter in
            let count = seen[parameter.name, default: 0]
            seen[parameter.name] = count + 1
            return ("\(path)/\(parameter.name)" + (count == 0 ? "" : "_\(count)"), parameter)
        }
    }
}
