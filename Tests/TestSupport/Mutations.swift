import Foundation

// Mutants of files for fuzz tests of readers: edited JSON leaves, flipped bits, cut files.

/// Edits of JSON values for fuzz tests of file readers: every leaf replaced by values of other types and ranges.
public enum JSONMutations {
    /// Replacements that cover other types, zero, negatives, fractions and large numbers.
    public static var replacements: [Any] { [-1, 0, 1, 1e9, 0.5, "x", NSNull(), true, [Any](), [String: Any]()] }

    /// Every leaf of a JSON value (as `JSONSerialization` reads it) as a path of keys and indices; a non-empty
    /// array is listed as well as its elements.
    public static func leafPaths(_ value: Any, _ path: [Any] = []) -> [[Any]] {
        if let object = value as? [String: Any] {
            return object.keys.sorted().flatMap { leafPaths(object[$0]!, path + [$0]) }
        }
        if let array = value as? [Any], !array.isEmpty {
            return array.indices.flatMap { leafPaths(array[$0], path + [$0]) } + [path]
        }
        return [path]
    }

    /// Returns `value` with the value at `path` replaced.
    public static func replacing(_ value: Any, at path: ArraySlice<Any>, with replacement: Any) -> Any {
        guard let key = path.first else { return replacement }
        if var object = value as? [String: Any], let key = key as? String {
            object[key] = replacing(object[key]!, at: path.dropFirst(), with: replacement)
            return object
        }
        if var array = value as? [Any], let index = key as? Int {
            array[index] = replacing(array[index], at: path.dropFirst(), with: replacement)
            return array
        }
        return value
    }

    /// Every mutant of a JSON text: each leaf (see ``leafPaths(_:_:)``) replaced by each of ``replacements``,
    /// labelled with the path and the replacement.
    public static func mutants(of data: Data) throws -> [(label: String, data: Data)] {
        let root = try JSONSerialization.jsonObject(with: data)
        var result: [(String, Data)] = []
        for path in leafPaths(root) where !path.isEmpty {
            for replacement in replacements {
                let mutated = replacing(root, at: path[...], with: replacement)
                result.append(("\(path) = \(replacement)", try JSONSerialization.data(withJSONObject: mutated)))
            }
        }
        return result
    }
}

/// A small deterministic generator, so the mutants are the same on every run.
public struct SeededBytes {
    private var state: UInt64

    /// Creates a generator.
    public init(seed: UInt64) { state = seed }

    /// Returns a number in `0..<bound`.
    public mutating func next(below bound: Int) -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(bound))
    }

    /// Returns `count` copies of `bytes`, each with one bit flipped, then `bytes` cut at `cuts` evenly spaced lengths.
    public mutating func flipsAndCuts(of bytes: Data, count: Int, cuts: Int) -> [(label: String, data: Data)] {
        var result: [(String, Data)] = []
        for _ in 0..<count {
            var flipped = bytes
            let offset = next(below: bytes.count)
            flipped[offset] ^= UInt8(1 << next(below: 8))
            result.append(("bit flip at \(offset)", flipped))
        }
        for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / cuts)) {
            result.append(("cut at \(cut)", bytes.prefix(cut)))
        }
        return result
    }
}
