import Foundation
import XCTest

/// `unroll textgen --text FILE`, `--save` and `--load`: a model trained on a file, saved, and reloaded
/// generates exactly what it generated before saving.
final class TextGenerationFileTests: XCTestCase {
    func testTrainsOnAFileSavesAndReloads() throws {
        let directory = try temporaryDirectory(self)
        let text = directory.appendingPathComponent("corpus.txt")
        try "The cat sat on the mat.\nThe   cat ate the rat. ".write(to: text, atomically: true, encoding: .utf8)
        let model = directory.appendingPathComponent("textgen")
        let common = ["--length", "30", "--seed-text", "the ", "--temperature", "0.7", "--seed", "5"]
        let (status, output) = runTool(["textgen", "--text", text.path, "--epochs", "2", "--units", "8",
                                        "--sequence-length", "6", "--save", model.path] + common)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Corpus: 44 characters of \(text.path), 12 distinct."), output)
        XCTAssertTrue(output.contains("Saved to \(model.path)."), output)
        let (reloadStatus, reloaded) = runTool(["textgen", "--load", model.path] + common)
        XCTAssertEqual(reloadStatus, 0, reloaded)
        XCTAssertTrue(reloaded.contains("Loaded a model of 8 units over 12 characters"), reloaded)
        XCTAssertFalse(reloaded.contains("epoch"), "a loaded model is not trained again")
        let last = { (text: String) in text.split(separator: "\n").last.map(String.init) ?? "" }
        XCTAssertEqual(last(reloaded), last(output))
        XCTAssertEqual(last(output).count, "the ".count + 30)

        let (missingStatus, missing) = runTool(["textgen", "--text", directory.appendingPathComponent("none.txt").path])
        XCTAssertEqual(missingStatus, 2)
        XCTAssertTrue(missing.contains("option '--text': cannot read"), missing)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: model.path).sorted(),
                       ["manifest.json", "model.json", "model.safetensors", "vocabulary.json"])
        XCTAssertEqual(runTool(["textgen", "--load", text.path]).status, 1, "not a model directory")
        try FileManager.default.removeItem(at: model.appendingPathComponent("vocabulary.json"))
        let (otherStatus, other) = runTool(["textgen", "--load", model.path])
        XCTAssertEqual(otherStatus, 1, other)
        XCTAssertTrue(other.contains("vocabulary.json"), other)
    }
}
