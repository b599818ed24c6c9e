#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Graph
import Layers
import Serialization
import Train
import XCTest

/// A model directory is saved as a whole (old or new after any interruption), every file is covered by the
/// manifest that `load` checks, and saves refuse destinations that are not theirs to replace.
final class ModelDirectoryTests: XCTestCase {
    private struct Interrupted: Error {}

    private func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ModelDirectoryTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func smallModel(seed: UInt64) -> Sequential {
        Initializers.resetSeedSequence(to: seed)
        return Sequential([LSTM(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 2)])
    }

    private func files(_ directory: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            result[name] = try Data(contentsOf: directory.appendingPathComponent(name))
        }
        return result
    }

    private func hiddenEntries(_ folder: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix(".") }.sorted()
    }

    // MARK: The manifest

    func testEveryFileIsCheckedAgainstTheManifest() throws {
        let directory = try temporaryFolder().appendingPathComponent("model")
        try smallModel(seed: 1).save(to: directory, additionalFiles: [("preprocessing.json", Data("{\"a\": 1}".utf8))])
        XCTAssertEqual(try files(directory).keys.sorted(),
                       ["manifest.json", "model.json", "model.safetensors", "preprocessing.json"])
        let original = try files(directory)
        XCTAssertEqual(try Sequential.load(from: directory, additionalFiles: ["preprocessing.json"]).files,
                       ["preprocessing.json": original["preprocessing.json"]!])

        for name in ["model.json", "model.safetensors", "preprocessing.json"] {
            var changed = original[name]!
            changed[changed.count / 2] ^= 0x01
            try changed.write(to: directory.appendingPathComponent(name))
            XCTAssertThrowsError(try Sequential.load(from: directory, additionalFiles: ["preprocessing.json"]), name) { error in
                // The weights file's own checks (header, per-tensor CRC) run first, before the manifest's.
                if name == "model.safetensors", error is SafeTensorsError { return }
                guard case .checksumMismatch(let file, _, _)? = error as? ModelArchiveError else {
                    return XCTFail("\(name): \(error)")
                }
                XCTAssertEqual(file, directory.appendingPathComponent(name).path)
            }
            try original[name]!.write(to: directory.appendingPathComponent(name))
        }

        // An entry removed from the manifest is an error, never "unchecked".
        let manifestURL = directory.appendingPathComponent("manifest.json")
        for name in ["model.json", "model.safetensors", "preprocessing.json"] {
            var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: original["manifest.json"]!) as? [String: Any])
            object["files"] = (object["files"] as! [[String: Any]]).filter { $0["name"] as? String != name }
            try JSONSerialization.data(withJSONObject: object).write(to: manifestURL)
            XCTAssertThrowsError(try Sequential.load(from: directory, additionalFiles: ["preprocessing.json"]), name) { error in
                XCTAssertEqual(error as? ModelArchiveError,
                               .missingChecksum(file: directory.appendingPathComponent(name).path, manifest: manifestURL.path))
            }
        }
        // A directory without a manifest cannot vouch for a tool's file.
        try FileManager.default.removeItem(at: manifestURL)
        XCTAssertThrowsError(try Sequential.load(from: directory, additionalFiles: ["preprocessing.json"])) { error in
            guard case .missingChecksum? = error as? ModelArchiveError else { return XCTFail("\(error)") }
        }
    }

    // MARK: Atomic replacement

    func testASaveReplacesTheWholeDirectoryAndCleansStaleTemporaries() throws {
        let folder = try temporaryFolder()
        let directory = folder.appendingPathComponent("model")
        let old = smallModel(seed: 1), new = smallModel(seed: 2)
        try old.save(to: directory, additionalFiles: [("preprocessing.json", Data("old".utf8))])
        let oldFiles = try files(directory)
        // Left by a save killed before its swap, and by one killed after it.
        try FileManager.default.createDirectory(at: folder.appendingPathComponent(".model.tmp-dead"),
                                                withIntermediateDirectories: false)
        try Data("half".utf8).write(to: folder.appendingPathComponent(".model.tmp-dead/model.json"))
        XCTAssertThrowsError(try new.save(to: directory) { _ in throw Interrupted() })
        XCTAssertEqual(try files(directory), oldFiles, "an interrupted save leaves the old directory")

        try new.save(to: directory)
        XCTAssertEqual(try hiddenEntries(folder), [], "stale temporaries are removed")
        XCTAssertEqual(try files(directory).keys.sorted(), ["manifest.json", "model.json", "model.safetensors"],
                       "the old preprocessing.json does not survive into the new model")
        let x = Tensor.randomUniform([2, 4, 2], in: -1...1, seed: 3)
        XCTAssertEqual(try Sequential.load(from: directory).predict(x).scalars, try new.predict(x).scalars)
    }

    func testTwoRenameSwapIsResolvedByLoadAndRepairedByTheNextSave() throws {
        let folder = try temporaryFolder()
        let directory = folder.appendingPathComponent("model")
        let old = smallModel(seed: 1), new = smallModel(seed: 2)
        let x = Tensor.randomUniform([2, 4, 2], in: -1...1, seed: 3)
        try old.save(to: directory, swap: .twoRenames)
        try new.save(to: directory, swap: .twoRenames)
        XCTAssertEqual(try Sequential.load(from: directory).predict(x).scalars, try new.predict(x).scalars)
        XCTAssertEqual(try hiddenEntries(folder), [])

        // The state between the two renames: the old model set aside, the new one complete under its temporary name.
        try new.save(to: folder.appendingPathComponent(".model.tmp-1234"))
        try FileManager.default.moveItem(at: directory, to: folder.appendingPathComponent(".model.old-5678"))
        XCTAssertEqual(try Sequential.load(from: directory).predict(x).scalars, try new.predict(x).scalars,
                       "load reads the complete model set aside")
        try old.save(to: directory, swap: .twoRenames)
        XCTAssertEqual(try hiddenEntries(folder), [])
        XCTAssertEqual(try Sequential.load(from: directory).predict(x).scalars, try old.predict(x).scalars)
    }

    // MARK: Destinations that are not a save's to replace

    func testAtomicWriteRefusesAFIFOAndASymbolicLink() throws {
        let folder = try temporaryFolder()
        let fifo = folder.appendingPathComponent("pipe")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        XCTAssertThrowsError(try writeAtomically(Data("x".utf8), to: fifo)) { error in
            XCTAssertEqual((error as? AtomicWriteError)?.step, .checkDestination)
            XCTAssertEqual((error as? AtomicWriteError)?.description,
                           "could not save \(fifo.path): failed to replace it: it is a FIFO, not a regular file")
        }
        let target = folder.appendingPathComponent("target.txt")
        try Data("keep".utf8).write(to: target)
        let link = folder.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: target)
        XCTAssertThrowsError(try writeAtomically(Data("x".utf8), to: link)) { error in
            XCTAssertEqual((error as? AtomicWriteError)?.reason, "it is a symbolic link, not a regular file")
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), target.path)
        XCTAssertEqual(try Data(contentsOf: target), Data("keep".utf8))
        var status = stat()
        XCTAssertEqual(lstat(fifo.path, &status), 0)
        XCTAssertEqual(status.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")
        XCTAssertEqual(try hiddenEntries(folder), [])

        // A model directory: a FIFO, a link to a directory and a folder of other files are refused alike.
        let model = smallModel(seed: 1)
        let elsewhere = folder.appendingPathComponent("elsewhere")
        try model.save(to: elsewhere)
        let linkedDirectory = folder.appendingPathComponent("linked")
        try FileManager.default.createSymbolicLink(at: linkedDirectory, withDestinationURL: elsewhere)
        let project = folder.appendingPathComponent("project")
        try FileManager.default.createDirectory(at: project, withIntermediateDirectories: false)
        try Data("notes".utf8).write(to: project.appendingPathComponent("notes.txt"))
        for (destination, reason) in [(fifo, "it is a FIFO, not a model directory"),
                                      (linkedDirectory, "it is a symbolic link, not a model directory"),
                                      (project, "it holds 'notes.txt', which a saved model does not; choose a new or empty directory")] {
            XCTAssertThrowsError(try model.save(to: destination)) { error in
                XCTAssertEqual((error as? AtomicWriteError)?.step, .checkDestination, "\(error)")
                XCTAssertEqual((error as? AtomicWriteError)?.reason, reason)
            }
        }
        XCTAssertEqual(try Data(contentsOf: project.appendingPathComponent("notes.txt")), Data("notes".utf8))
        XCTAssertEqual(try hiddenEntries(folder), [])
    }
}
