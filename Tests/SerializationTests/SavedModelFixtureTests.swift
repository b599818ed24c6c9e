import Foundation
import Graph
import Layers
import Serialization
import TestSupport
import Train
import XCTest

/// Model directories saved by an earlier version (format version 1, `Tests/Fixtures/models`) must keep loading
/// and predicting as they did when saved, whatever changes in how weights are named inside the program.
final class SavedModelFixtureTests: XCTestCase {
    private let folder = Fixture.packageRoot.appendingPathComponent("Tests/Fixtures/models", isDirectory: true)

    /// Loads `name`, checks its layers, and compares its predictions with those stored beside it.
    private func checkSavedModel(_ name: String, layers: [String], file: StaticString = #filePath,
                                 line: UInt = #line) throws -> Sequential {
        let model = try Sequential.load(from: folder.appendingPathComponent(name, isDirectory: true))
        XCTAssertEqual(model.name, name, file: file, line: line)
        XCTAssertEqual(model.layers.map(\.typeName), layers, file: file, line: line)
        let (tensors, _) = try SafeTensors.read(from: folder.appendingPathComponent(name + ".safetensors"))
        let input = try XCTUnwrap(tensors["input"], file: file, line: line)
        let expected = try XCTUnwrap(tensors["output"], file: file, line: line)
        assertClose(try model.predict(input), expected, tolerance: 1e-5, name, file: file, line: line)
        return model
    }

    func testRecurrentModelSavedByVersion1Loads() throws {
        let model = try checkSavedModel("recurrent_v1", layers: ["Bidirectional", "StackedGRU", "EchoStateNetwork",
                                                                 "Bidirectional", "Dense"])
        XCTAssertEqual((model.layers[0] as? Bidirectional<LSTMCell>)?.mergeMode, .sum)
        XCTAssertEqual((model.layers[1] as? RNN<StackedCells<GRUCell>>)?.cell.cells.map(\.resetAfter), [true, false])
        XCTAssertEqual((model.layers[2] as? EchoStateNetwork)?.leakRate, 0.4)
        XCTAssertEqual(model.parameters.count, 6 + 6 + 5 + 6 + 2)
    }

    func testEmbeddingModelSavedByVersion1Loads() throws {
        let model = try checkSavedModel("embedding_v1", layers: ["Embedding", "SimpleRNN", "Dropout", "IndRNN",
                                                                 "PeepholeLSTM", "Bidirectional", "Dense"])
        XCTAssertEqual((model.layers[4] as? PeepholeLSTM)?.goBackwards, true)
        XCTAssertEqual((model.layers[6] as? Dense)?.usesBias, false)
    }
}
