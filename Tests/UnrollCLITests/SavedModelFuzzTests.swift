import Foundation
import Serialization
import TestSupport
import XCTest

/// `unroll predict` on model directories whose files were edited (with the manifest rewritten to match, as an
/// attacker would, so every mutant reaches the validation of values): each run ends in a forecast or in a typed
/// error naming the file, never in a crash.
final class SavedModelFuzzTests: XCTestCase {
    private func edited(_ data: Data, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    func testPredictSurvivesEditedModelDirectories() throws {
        let folder = try temporaryDirectory(self)
        let lines = ["t,x,y"] + (0..<40).map { "\($0),\($0 % 3),\(2 * $0 + 1)" }
        let csv = folder.appendingPathComponent("ramp.csv")
        try (lines.joined(separator: "\n") + "\n").write(to: csv, atomically: true, encoding: .utf8)
        let directory = folder.appendingPathComponent("model")
        let trained = runTool(["train", csv.path, "--target", "y", "--features", "x", "--past", "4", "--future", "2",
                               "--units", "3", "--epochs", "1", "--out", directory.path])
        XCTAssertEqual(trained.status, 0, trained.output)
        let names = ["model.json", "preprocessing.json", "model.safetensors"]
        var original: [String: Data] = [:]
        for name in names { original[name] = try Data(contentsOf: directory.appendingPathComponent(name)) }

        // The edits of the issue's report, each of which used to crash `predict`.
        var mutants: [(label: String, file: String, data: Data)] = [
            ("returnSequences true", "model.json", try edited(original["model.json"]!) { object in
                var layers = object["layers"] as! [[String: Any]]
                layers[0]["returnSequences"] = true
                object["layers"] = layers
            }),
            ("a Dense-only model", "model.json", try edited(original["model.json"]!) { object in
                object["layers"] = [(object["layers"] as! [[String: Any]]).last!]
            }),
            ("futureSteps 3", "preprocessing.json", try edited(original["preprocessing.json"]!) { $0["futureSteps"] = 3 }),
            ("futureSteps -1", "preprocessing.json", try edited(original["preprocessing.json"]!) { $0["futureSteps"] = -1 }),
            ("standardDeviations []", "preprocessing.json", try edited(original["preprocessing.json"]!) { object in
                var scaler = object["standardScaler"] as! [String: Any]
                scaler["standardDeviations"] = [Float]()
                object["standardScaler"] = scaler
            }),
        ]
        for name in ["model.json", "preprocessing.json"] {
            mutants += try JSONMutations.mutants(of: original[name]!).map { ($0.label, name, $0.data) }
        }
        var generator = SeededBytes(seed: 7)
        for name in names {
            mutants += generator.flipsAndCuts(of: original[name]!, count: 120, cuts: 20).map { ($0.label, name, $0.data) }
        }

        var counts: [String: Int] = [:], refused = 0, forecasts = 0
        for (label, name, data) in mutants {
            var files = original
            files[name] = data
            for (file, bytes) in files { try bytes.write(to: directory.appendingPathComponent(file)) }
            let manifest = ModelManifest(files: names.map { ($0, files[$0]!) })
            try manifest.encoded().write(to: directory.appendingPathComponent("manifest.json"))
            let (status, output) = runTool(["predict", csv.path, "--model", directory.path])
            counts[name, default: 0] += 1
            if status == 0 {
                forecasts += 1
            } else {
                refused += 1
                XCTAssertEqual(status, 1, "\(name), \(label): \(output)")
                XCTAssertTrue(output.hasPrefix("error: "), "\(name), \(label): \(output)")
                XCTAssertFalse(output.contains("NSCocoaErrorDomain"), "\(name), \(label): \(output)")
            }
        }
        // The issue's five edits are refused, naming the file.
        for index in 0..<5 {
            let (label, name, data) = mutants[index]
            var files = original
            files[name] = data
            for (file, bytes) in files { try bytes.write(to: directory.appendingPathComponent(file)) }
            try ModelManifest(files: names.map { ($0, files[$0]!) }).encoded()
                .write(to: directory.appendingPathComponent("manifest.json"))
            let (status, output) = runTool(["predict", csv.path, "--model", directory.path])
            XCTAssertEqual(status, 1, label)
            XCTAssertTrue(output.hasPrefix("error: ") && output.contains(directory.path + "/"), "\(label): \(output)")
        }
        print("SavedModelFuzzTests: \(mutants.count) mutants (model.json \(counts["model.json"] ?? 0), "
              + "preprocessing.json \(counts["preprocessing.json"] ?? 0), model.safetensors \(counts["model.safetensors"] ?? 0)): "
              + "\(refused) refused with an error, \(forecasts) forecast, 0 crashes")
        XCTAssertGreaterThan(mutants.count, 500)
    }
}
