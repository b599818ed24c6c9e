import Foundation
import Graph

/// Reference numbers computed by PyTorch autograd, loaded from `Tests/Fixtures` in the repository, or from
/// the folder named by the `UNROLL_FIXTURES` environment variable (another set of the same format).
public struct Fixture {
    /// The fixture's file name without extension (`"lstm"`).
    public let name: String
    /// The decoded JSON object.
    public let json: [String: Any]

    /// The folder fixtures are read from.
    public static var folder: URL {
        if let override = ProcessInfo.processInfo.environment["UNROLL_FIXTURES"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        return packageRoot.appendingPathComponent("Tests/Fixtures", isDirectory: true)
    }

    /// The small data sets the tests read (`Tests/Fixtures/data`), kept in the repository.
    public static var dataFolder: URL {
        packageRoot.appendingPathComponent("Tests/Fixtures/data", isDirectory: true)
    }

    /// The package root (three levels above this file).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The names of every `.json` fixture in the folder, sorted.
    public static func allNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// Loads a fixture by name.
    public init(_ name: String) throws {
        self.name = name
        let url = Fixture.folder.appendingPathComponent(name + ".json")
        let data = try Data(contentsOf: url)
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError("\(url.path): top level is not an object")
        }
        json = object
    }

    /// Returns the integer at `key`.
    public func int(_ key: String) throws -> Int {
        guard let value = json[key] as? Int else { throw FixtureError("\(name): no integer '\(key)'") }
        return value
    }

    /// Returns the number at `key`.
    public func double(_ key: String) throws -> Double {
        guard let value = json[key] as? Double ?? (json[key] as? Int).map(Double.init) else {
            throw FixtureError("\(name): no number '\(key)'")
        }
        return value
    }

    /// Returns the nested array at a key path (`["params", "weight_ih"]`) as a tensor.
    public func tensor(_ path: String...) throws -> Tensor {
        var value: Any = json
        for key in path {
            guard let object = value as? [String: Any], let next = object[key] else {
                throw FixtureError("\(name): no entry \(path.joined(separator: "."))")
            }
            value = next
        }
        return try Fixture.tensor(from: value, label: "\(name).\(path.joined(separator: "."))")
    }

    /// Returns the keys of the object at `key`.
    public func keys(_ key: String) throws -> [String] {
        guard let object = json[key] as? [String: Any] else { throw FixtureError("\(name): no object '\(key)'") }
        return object.keys.sorted()
    }

    /// Converts nested JSON arrays of numbers into a tensor, inferring the shape.
    public static func tensor(from value: Any, label: String) throws -> Tensor {
        var shape: [Int] = []
        var probe: Any = value
        while let array = probe as? [Any] {
            shape.append(array.count)
            guard let first = array.first else { break }
            probe = first
        }
        var scalars: [Float] = []
        func walk(_ item: Any, depth: Int) throws {
            if depth == shape.count {
                guard let number = item as? NSNumber else { throw FixtureError("\(label): non-number entry") }
                scalars.append(number.floatValue)
                return
            }
            guard let array = item as? [Any], array.count == shape[depth] else {
                throw FixtureError("\(label): ragged array at depth \(depth)")
            }
            for element in array { try walk(element, depth: depth + 1) }
        }
        try walk(value, depth: 0)
        return Tensor(shape: shape, scalars: scalars)
    }
}

/// A fixture file is missing or malformed.
public struct FixtureError: Error, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    /// Creates an error with a message.
    public init(_ description: String) { self.description = description }
}
