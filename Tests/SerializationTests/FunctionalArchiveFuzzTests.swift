import Foundation
import Graph
import Layers
import Serialization
import TestSupport
import Train
import XCTest

/// `Model.load` on functional model directories whose `model.json` or weights were edited (the manifest rewritten
/// to match, as an attacker would, so every mutant reaches the validation of values): each load ends in a model or
/// in a typed error naming the file, never in a crash.
final class FunctionalArchiveFuzzTests: XCTestCase {
    func testLoadSurvivesEditedFunctionalModels() throws {
        let fixture = Fixture.packageRoot.appendingPathComponent("Tests/Fixtures/models/functional_v1", isDirectory: true)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("FunctionalFuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let names = ["model.json", "model.safetensors"]
        var original: [String: Data] = [:]
        for name in names { original[name] = try Data(contentsOf: fixture.appendingPathComponent(name)) }

        var mutants = try JSONMutations.mutants(of: original["model.json"]!).map { ($0.label, "model.json", $0.data) }
        var generator = SeededBytes(seed: 11)
        for name in names {
            mutants += generator.flipsAndCuts(of: original[name]!, count: 100, cuts: 20).map { ($0.label, name, $0.data) }
        }
        for (file, bytes) in original { try bytes.write(to: directory.appendingPathComponent(file)) }
        var refused = 0, loaded = 0, previous: String?
        for (label, name, data) in mutants {
            if let previous, previous != name {
                try original[previous]!.write(to: directory.appendingPathComponent(previous))
            }
            previous = name
            var files = original
            files[name] = data
            try data.write(to: directory.appendingPathComponent(name))
            try ModelManifest(files: names.map { ($0, files[$0]!) }).encoded()
                .write(to: directory.appendingPathComponent("manifest.json"))
            do {
                let model = try Model.load(from: directory)
                XCTAssertFalse(model.summary().isEmpty, label)
                loaded += 1
            } catch let error as ModelArchiveError {
                refused += 1
                XCTAssertTrue("\(error)".contains(directory.path + "/"), "\(label): \(error)")
            } catch is SafeTensorsError, is WeightError {
                refused += 1
            } catch {
                XCTFail("\(label): an untyped error \(error)")
            }
        }
        print("FunctionalArchiveFuzzTests: \(mutants.count) mutants: \(refused) refused with an error, \(loaded) loaded, 0 crashes")
        XCTAssertGreaterThan(mutants.count, 1000)
        XCTAssertGreaterThan(refused, mutants.count / 2)
    }
}
