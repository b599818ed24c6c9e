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

    /// A directory without a tool's file (here `predict` given a model that `train` did not write) names the
    /// missing file, even when it predates manifests and so could not vouch for such a file anyway.
    func testAMissingToolFileIsReportedAsMissing() throws {
        let directory = folder.appendingPathComponent("recurrent_v1", isDirectory: true)
        XCTAssertThrowsError(try Sequential.load(from: directory, additionalFiles: ["preprocessing.json"])) { error in
            XCTAssertEqual(error as? ModelArchiveError,
                           .missingFile(path: directory.appendingPathComponent("preprocessing.json").path))
        }
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

/// The functional model directory saved by format version 1 (`Tests/Fixtures/models/functional_v1`) must keep
/// loading and predicting as it did when saved.
final class SavedFunctionalModelFixtureTests: XCTestCase {
    private let folder = Fixture.packageRoot.appendingPathComponent("Tests/Fixtures/models", isDirectory: true)

    func testFunctionalModelSavedByVersion1Loads() throws {
        let model = try Model.load(from: folder.appendingPathComponent("functional_v1", isDirectory: true))
        XCTAssertEqual(model.name, "functional_v1")
        XCTAssertEqual(model.layerNames, ["input_layer", "embedding", "lstm", "input_layer_1", "dense", "masking", "add",
                                          "multiply", "lstm_1", "concatenate", "time_distributed", "repeat_vector",
                                          "bidirectional", "dropout", "concatenate_1", "dense_1"])
        XCTAssertEqual(model.calls.filter { $0.layer is Dense && model.name(of: $0.layer) == "dense" }.count, 2,
                       "the shared Dense is one layer called twice")
        XCTAssertEqual(model.calls.first { $0.layer is LSTM && model.name(of: $0.layer) == "lstm_1" }?.inputs.count, 3,
                       "the decoder LSTM starts from the encoder's state")
        XCTAssertEqual((model.layers[1] as? Embedding)?.maskZero, true)
        XCTAssertEqual(model.parameterCount, 363)
        let (tensors, _) = try SafeTensors.read(from: folder.appendingPathComponent("functional_v1.safetensors"))
        let x = [try XCTUnwrap(tensors["tokens"]), try XCTUnwrap(tensors["series"])]
        let outputs = try model.predict(x)
        assertClose(outputs[0], try XCTUnwrap(tensors["output_0"]), tolerance: 1e-5, "sequence output")
        assertClose(outputs[1], try XCTUnwrap(tensors["output_1"]), tolerance: 1e-5, "summary output")
    }
}
