import Datasets
import Foundation
import Graph
import Serialization
import Train

/// A value of a saved model directory that is out of range or disagrees with another file of the directory.
struct ModelFileError: Error, Equatable, CustomStringConvertible {
    /// The file's path.
    let file: String
    /// The field (`standardScaler.standardDeviations`).
    let field: String
    /// What the field holds.
    let found: String
    /// What it must hold.
    let expected: String

    /// A sentence naming the file, the field, what it holds and what it must hold.
    var description: String { "\(file): \(field) is \(found), expected \(expected)" }
}

/// What `predict` loads from a directory written by `train`: the model and its preprocessing, from one save,
/// every file checked against the manifest and every value of `preprocessing.json` against the model.
struct SavedForecaster {
    let model: Sequential
    let preprocessing: Preprocessing

    /// Loads and cross-checks the directory.
    ///
    /// - Throws: ``ModelArchiveError``, ``SafeTensorsError`` or ``WeightError`` for the model's files,
    ///   ``ModelFileError`` for a value that is out of range or disagrees with the model.
    init(directory: URL) throws {
        let (model, files) = try Sequential.load(from: directory, additionalFiles: [Preprocessing.fileName])
        let path = resolvedModelDirectory(directory).appendingPathComponent(Preprocessing.fileName).path
        let preprocessing: Preprocessing
        do {
            preprocessing = try JSONDecoder().decode(Preprocessing.self, from: files[Preprocessing.fileName]!)
        } catch let error as DecodingError {
            throw ModelFileError(file: path, field: Self.field(of: error), found: "unreadable",
                                 expected: Self.reason(of: error))
        }
        try preprocessing.validate(file: path)
        let modelPath = resolvedModelDirectory(directory).appendingPathComponent("model.json").path
        let expectedInput = [preprocessing.pastSteps, preprocessing.features.count]
        guard model.inputShape == expectedInput else {
            throw ModelFileError(file: modelPath, field: "inputShape", found: "\(model.inputShape ?? [])",
                                 expected: "\(expectedInput) ([pastSteps, features.count] of \(Preprocessing.fileName))")
        }
        let output = model.outputShape ?? []
        guard output == [preprocessing.futureSteps] else {
            throw ModelFileError(file: modelPath, field: "layers (the model's output shape)", found: "\(output)",
                                 expected: "[\(preprocessing.futureSteps)] (futureSteps of \(Preprocessing.fileName))")
        }
        self.model = model
        self.preprocessing = preprocessing
    }

    private static func field(of error: DecodingError) -> String {
        let path: [any CodingKey]
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): path = context.codingPath
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        @unknown default: path = []
        }
        let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return text.isEmpty ? "the top level" : String(text.drop { $0 == "." })
    }

    private static func reason(of error: DecodingError) -> String {
        switch error {
        case .keyNotFound: "a value (it is missing)"
        case .typeMismatch(let type, _): "a value of type \(type)"
        case .valueNotFound(let type, _): "a value of type \(type), not null"
        case .dataCorrupted(let context): "valid JSON (\(context.debugDescription))"
        @unknown default: "\(error)"
        }
    }
}

extension Preprocessing {
    /// Throws ``ModelFileError`` naming the first field of `preprocessing.json` that is out of range or
    /// disagrees with another.
    func validate(file: String) throws {
        func fail(_ field: String, _ found: String, _ expected: String) -> ModelFileError {
            ModelFileError(file: file, field: field, found: found, expected: expected)
        }
        guard !features.isEmpty, Set(features).count == features.count, !features.contains("") else {
            throw fail("features", "\(features)", "a non-empty list of distinct column names")
        }
        guard features.contains(target) else { throw fail("target", "'\(target)'", "one of features \(features)") }
        guard (1...1_000_000).contains(pastSteps) else { throw fail("pastSteps", "\(pastSteps)", "1...1000000") }
        guard (1...1_000_000).contains(futureSteps) else { throw fail("futureSteps", "\(futureSteps)", "1...1000000") }
        guard windowing == nil || windowing == "changes" || windowing == "levels" else {
            throw fail("windowing", "'\(windowing!)'", "'changes' or 'levels'")
        }
        let count = features.count
        func checkList(_ name: String, _ values: [Float]?, positive: Bool = false) throws {
            guard let values else { throw fail(name, "missing", "\(count) numbers, one per feature") }
            guard values.count == count else {
                throw fail(name, "\(values.count) numbers", "\(count), one per feature")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite || (positive && $0 < 0) }) {
                throw fail("\(name)[\(bad)]", "\(values[bad])", positive ? "a finite number ≥ 0" : "a finite number")
            }
        }
        switch scaler {
        case "standard":
            try checkList("standardScaler.means", standardScaler?.means)
            try checkList("standardScaler.standardDeviations", standardScaler?.standardDeviations, positive: true)
        case "minmax":
            guard let range = minMaxScaler?.featureRange, range.lowerBound.isFinite, range.upperBound.isFinite,
                  range.lowerBound < range.upperBound else {
                throw fail("minMaxScaler.featureRange", "\(minMaxScaler.map { "\($0.featureRange)" } ?? "missing")",
                           "two finite numbers, the first below the second")
            }
            try checkList("minMaxScaler.minimums", minMaxScaler?.minimums)
            try checkList("minMaxScaler.maximums", minMaxScaler?.maximums)
        default:
            throw fail("scaler", "'\(scaler)'", "'standard' or 'minmax'")
        }
    }
}
