import Foundation
import Graph
import Layers
import Serialization
import TestSupport
import Train
import XCTest

/// Models written by Keras 3 (`Tests/Fixtures/keras/make_fixtures.py`): same parameter count, same predictions.
final class KerasModelTests: XCTestCase {
    static let models = ["lstm_gru_dense", "bidirectional_concat", "bidirectional_sum", "bidirectional_mul",
                         "bidirectional_ave", "simple_rnn_relu", "gru_reset_before", "embedding_lstm_softmax",
                         "course_lstm400"]

    /// The recorded input, Keras' output and parameter count of a fixture.
    static func expected(_ name: String) throws -> (input: Tensor, output: Tensor, parameterCount: Int) {
        let json = try JSON.parse(try KerasFixtures.bytes(name + ".json"))
        return (try tensor(json.field("input")), try tensor(json.field("output")), try json.field("parameterCount").int())
    }

    /// Converts nested JSON arrays of numbers into a tensor.
    static func tensor(_ field: JSONField) throws -> Tensor {
        var shape: [Int] = []
        var probe = field.value
        while case .array(let elements) = probe {
            shape.append(elements.count)
            guard let first = elements.first else { break }
            probe = first
        }
        var scalars: [Float] = []
        func walk(_ value: JSON) throws {
            switch value {
            case .array(let elements): try elements.forEach(walk)
            case .number(let number): scalars.append(Float(number.value))
            default: throw JSONError.wrongType(path: field.path, expected: "numbers", found: value.summary)
            }
        }
        try walk(field.value)
        return Tensor(shape: shape, scalars: scalars)
    }

    func testEveryKerasModelHasKerasParameterCountAndPredictions() throws {
        for name in Self.models {
            let model = try Sequential.load(keras: KerasFixtures.url(name + ".keras"))
            let (input, output, parameterCount) = try Self.expected(name)
            XCTAssertEqual(model.parameterCount, parameterCount, name)
            let predicted = try model.predict(input)
            XCTAssertEqual(predicted.shape, output.shape, name)
            let difference = zip(predicted.scalars, output.scalars).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(difference, 1e-5, "\(name): largest difference from Keras")
        }
    }

    func testLayersAndTrainingConfigurationMapOntoUnroll() throws {
        let model = try Sequential.load(keras: KerasFixtures.url("lstm_gru_dense.keras"))
        XCTAssertEqual(model.inputShape, [5, 3])
        XCTAssertEqual(model.layers.map(\.typeName), ["LSTM", "Dropout", "GRU", "Dense"])
        XCTAssertEqual((model.layers[1] as? Dropout)?.rate, 0.25)
        XCTAssertEqual(model.loss?.name, "mean_squared_error")
        let adam = try XCTUnwrap(model.optimizer as? Adam)
        XCTAssertEqual([adam.learningRate, adam.beta1, adam.beta2, adam.epsilon], [0.002, 0.8, 0.99, 1e-6])
        let sgd = try XCTUnwrap(try Sequential.load(keras: KerasFixtures.url("bidirectional_concat.keras")).optimizer as? SGD)
        XCTAssertEqual([sgd.learningRate, sgd.momentum], [0.05, 0.9])
        let rmsprop = try XCTUnwrap(try Sequential.load(keras: KerasFixtures.url("bidirectional_sum.keras")).optimizer as? RMSProp)
        XCTAssertEqual([rmsprop.learningRate, rmsprop.rho], [0.003, 0.8])
        XCTAssertNil(try Sequential.load(keras: KerasFixtures.url("bidirectional_mul.keras")).optimizer)
        XCTAssertNil(try Sequential.load(keras: KerasFixtures.url("lstm_gru_dense.keras"), compile: false).optimizer)
    }

    func testWeightsFilesLoadByLayerName() throws {
        let keras = try Sequential.load(keras: KerasFixtures.url("lstm_gru_dense.keras"))
        let (input, output, _) = try Self.expected("lstm_gru_dense")
        for file in ["lstm_gru_dense.weights.h5", "lstm_gru_dense.latest.weights.h5"] {
            let model = Sequential([LSTM(hiddenSize: 4, returnSequences: true), Dropout(rate: 0.25), GRU(hiddenSize: 3),
                                    Dense(outputSize: 2, activation: .tanh)], inputShape: [5, 3])
            try model.loadWeights(kerasH5: KerasFixtures.url(file))
            assertClose(try model.predict(input), output, tolerance: 1e-5, file)
            XCTAssertEqual(model.weights, keras.weights, file)
        }
        XCTAssertThrowsError(try Sequential([GRU(hiddenSize: 3)], inputShape: [5, 3])
            .loadWeights(kerasH5: KerasFixtures.url("lstm_gru_dense.weights.h5"))) { error in
            XCTAssertEqual(error as? KerasError, .weightShapeMismatch(
                file: KerasFixtures.url("lstm_gru_dense.weights.h5").path, path: "layers/gru/cell/vars/0",
                expected: [3, 9], actual: [4, 9]))
        }
        XCTAssertThrowsError(try Sequential([SimpleRNN(hiddenSize: 2)], inputShape: [5, 3])
            .loadWeights(kerasH5: KerasFixtures.url("lstm_gru_dense.weights.h5"))) { error in
            XCTAssert("\(error)".hasSuffix(
                "no weight variable at 'layers/simple_rnn/cell/vars (the file has layers: dense, dropout, gru, lstm)'"), "\(error)")
        }
    }
}

/// A model trained in Swift, saved as `.keras`, opened again by Unroll and by Keras.
final class KerasRoundTripTests: XCTestCase {
    static func trainedModel() throws -> (Sequential, Tensor) {
        let model = untrainedModel()
        try model.compile(loss: .meanSquaredError, optimizer: Adam(learningRate: 0.01))
        let x = Tensor.randomNormal([16, 6, 2], seed: 5)
        let y = Tensor.randomUniform([16, 2], in: -0.5...0.5, seed: 6)
        _ = try model.fit(x, y, epochs: 3, batchSize: 8, verbose: .silent, seed: 7)
        return (model, x.slice(along: 0, 0..<3))
    }

    func testSwiftModelSavedAsKerasReopensWithTheSamePredictions() throws {
        let (model, input) = try Self.trainedModel()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-roundtrip-\(UUID().uuidString).keras")
        defer { try? FileManager.default.removeItem(at: url) }
        try model.save(keras: url)
        let reopened = try Sequential.load(keras: url)
        XCTAssertEqual(reopened.layers.map(\.typeName), ["LSTM", "Dropout", "Bidirectional", "Dense"])
        XCTAssertEqual(reopened.loss?.name, "mean_squared_error")
        XCTAssertEqual((reopened.optimizer as? Adam)?.learningRate, 0.01)
        XCTAssertEqual(reopened.weights, model.weights)
        XCTAssertEqual(try reopened.predict(input), try model.predict(input))
        let weightsURL = url.deletingPathExtension().appendingPathExtension("weights.h5")
        defer { try? FileManager.default.removeItem(at: weightsURL) }
        try model.saveWeights(kerasH5: weightsURL)
        let fresh = Self.untrainedModel()
        try fresh.loadWeights(kerasH5: weightsURL)
        XCTAssertEqual(fresh.weights, model.weights)

        if ProcessInfo.processInfo.environment["UNROLL_WRITE_KERAS_FIXTURES"] != nil {
            try model.save(keras: KerasFixtures.url("swift_trained.keras"))
            let record = JSON.object(JSONObject(["input": Self.json(input), "output": Self.json(try model.predict(input))]))
            try Data(record.serialized().utf8).write(to: KerasFixtures.url("swift_trained.json"))
        }
    }

    /// The committed file was written by Unroll and opened by Keras (`make_fixtures.py --check`), which recorded
    /// its predictions: both libraries compute the same function from it.
    func testKerasPredictsWhatUnrollPredictsForAFileUnrollWrote() throws {
        let record = try JSON.parse(try KerasFixtures.bytes("swift_trained.json"))
        let input = try KerasModelTests.tensor(record.field("input"))
        let unroll = try KerasModelTests.tensor(record.field("output"))
        let keras = try KerasModelTests.tensor(record.field("kerasOutput"))
        let model = try Sequential.load(keras: KerasFixtures.url("swift_trained.keras"))
        XCTAssertEqual(model.parameterCount, try record.field("kerasParameterCount").int())
        // Keras compiled it from the written training configuration (and, as for a compiled Keras model saved
        // before training, started its optimizer state afresh).
        let optimizer = try record.field("kerasOptimizer")
        XCTAssertEqual(try optimizer.field("class").string(), "Adam")
        XCTAssertEqual(try optimizer.field("learningRate").double(), 0.01, accuracy: 1e-9)
        XCTAssertEqual(try optimizer.field("loss").string(), "mse")
        let predicted = try model.predict(input)
        XCTAssertEqual(predicted, unroll)
        XCTAssertEqual(keras.shape, predicted.shape)
        XCTAssertLessThanOrEqual(zip(predicted.scalars, keras.scalars).map { abs($0 - $1) }.max() ?? .infinity, 1e-5)
    }

    static func untrainedModel() -> Sequential {
        Sequential([LSTM(hiddenSize: 4, returnSequences: true), Dropout(rate: 0.1),
                    Bidirectional(GRU(hiddenSize: 3, resetAfter: false), mergeMode: .concatenate),
                    Dense(outputSize: 2, activation: .tanh)], inputShape: [6, 2])
    }

    static func json(_ tensor: Tensor) -> JSON {
        func nest(_ axis: Int, _ offset: Int) -> JSON {
            if axis == tensor.rank { return .number(JSONNumber(Double(tensor.scalars[offset]))) }
            let stride = tensor.shape[(axis + 1)...].reduce(1, *)
            return .array((0..<tensor.shape[axis]).map { nest(axis + 1, offset + $0 * stride) })
        }
        return nest(0, 0)
    }
}

/// A functional Keras model: two inputs, a shared layer called twice, Add and Concatenate.
final class KerasFunctionalTests: XCTestCase {
    func testFunctionalModelHasKerasParameterCountAndPredictions() throws {
        let model = try Model.load(keras: KerasFixtures.url("functional_shared.keras"))
        let record = try JSON.parse(try KerasFixtures.bytes("functional_shared.json"))
        let inputs = try record.field("input").elements().map(KerasModelTests.tensor)
        let output = try KerasModelTests.tensor(record.field("output"))
        XCTAssertEqual(model.parameters.reduce(0) { $0 + $1.value.count }, try record.field("parameterCount").int())
        XCTAssertEqual(model.inputShapes, [[5, 3], [4]])
        let predicted = try XCTUnwrap(try model.predict(inputs).first)
        XCTAssertEqual(predicted.shape, output.shape)
        XCTAssertLessThanOrEqual(zip(predicted.scalars, output.scalars).map { abs($0 - $1) }.max() ?? .infinity, 1e-5)
        // The shared Dense appears once: LSTM, Dense (shared), Add, Concatenate, Dense, and two inputs.
        XCTAssertEqual(model.layers.count, 7)
    }

    func testASequentialLoaderNamesAFunctionalFile() throws {
        XCTAssertThrowsError(try Sequential.load(keras: KerasFixtures.url("functional_shared.keras"))) { error in
            guard case .unsupportedLayer(_, "the model", "Functional model")? = error as? KerasError else {
                return XCTFail("\(error)")
            }
        }
    }
}
