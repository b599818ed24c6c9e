import Graph
import Layers

/// The names of a model's layers: the first part of every weight name (`WeightNames.swift`).
package enum LayerNames {
    /// Keras-style layer names: the type in snake case, numbered from the second of a kind (`lstm`, `lstm_1`).
    package static func names(of layers: [any Layer]) -> [String] {
        names(ofTypes: layers.map(\.typeName))
    }

    /// Keras-style names of layers given by type name (Keras' class names or Unroll's `typeName`s).
    package static func names(ofTypes typeNames: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return typeNames.map { typeName in
            let base = snakeCase(typeName)
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
}
