import Foundation
import Graph
import Layers
import Train
import XCTest

/// The checks a user meets first throw typed errors instead of trapping: layer settings at `compile`,
/// weights handed to `setWeights`, and tensors built from outside data.
final class SettingsTests: XCTestCase {
    private func compileError(_ layers: [Layer], inputShape: [Int] = [4, 2]) -> TrainingError? {
        let model = Sequential(layers, inputShape: inputShape)
        do {
            try model.compile(loss: .meanSquaredError, optimizer: SGD())
            return nil
        } catch {
            return error as? TrainingError
        }
    }

    func testCompileNamesTheLayerAndTheSetting() {
        let cases: [(layers: [Layer], layer: String, setting: String, value: String)] = [
            ([LSTM(hiddenSize: 0)], "lstm (LSTM)", "hiddenSize", "0"),
            ([GRU(hiddenSize: -3)], "gru (GRU)", "hiddenSize", "-3"),
            ([SimpleRNN(hiddenSize: 0)], "simple_rnn (SimpleRNN)", "hiddenSize", "0"),
            ([PeepholeLSTM(hiddenSize: 0)], "peephole_lstm (PeepholeLSTM)", "hiddenSize", "0"),
            ([IndRNN(hiddenSize: 2, recurrentBound: -1)], "ind_rnn (IndRNN)", "recurrentBound", "-1.0"),
            ([LSTM(hiddenSize: 3), Dense(outputSize: 0)], "dense (Dense)", "outputSize", "0"),
            ([LSTM(hiddenSize: 3, returnSequences: true), Dropout(rate: 1), Dense(outputSize: 1)],
             "dropout (Dropout)", "rate", "1.0"),
            ([LSTM(hiddenSize: 3), Dropout(rate: -0.5)], "dropout (Dropout)", "rate", "-0.5"),
            ([Bidirectional(LSTM(hiddenSize: 0))], "bidirectional (Bidirectional)", "hiddenSize", "0"),
            ([RNN(StackedCells([LSTMCell]()))], "stacked (Stacked)", "cells", "[]"),
            ([EchoStateNetwork(reservoirSize: 10, outputSize: 1, leakRate: 2)],
             "echo_state_network (EchoStateNetwork)", "leakRate", "2.0"),
            ([EchoStateNetwork(reservoirSize: 0, outputSize: 1, inputShape: [4, 2])],
             "echo_state_network (EchoStateNetwork)", "reservoirSize", "0"),
        ]
        for (layers, layer, setting, value) in cases {
            guard case .invalidSetting(let name, let actualSetting, let actualValue, _)? = compileError(layers) else {
                XCTFail("\(layer): compile did not throw invalidSetting"); continue
            }
            XCTAssertEqual(name, layer)
            XCTAssertEqual(actualSetting, setting, layer)
            XCTAssertEqual(actualValue, value, layer)
        }
    }

    func testARecurrentSizeBeyondMemoryThrowsBeforeAllocating() {
        // 10⁶ units: a 4 TB recurrent kernel per gate. Refused at compile, allocated nowhere (not even in init).
        guard case .invalidSetting(let layer, let setting, let value, _)? = compileError([LSTM(hiddenSize: 1_000_000,
                                                                                              inputShape: [4, 2])]) else {
            return XCTFail("compile did not refuse 10⁶ units")
        }
        XCTAssertEqual([layer, setting, value], ["lstm (LSTM)", "hiddenSize", "1000000"])
    }

    func testEmbeddingSizesThrowAtCompile() {
        let error = compileError([Embedding(vocabularySize: 0, outputSize: 4)], inputShape: [3])
        XCTAssertEqual(error, .invalidSetting(layer: "embedding (Embedding)", setting: "vocabularySize", value: "0",
                                              requirement: "must be positive"))
        XCTAssertEqual(error?.description, "embedding (Embedding): vocabularySize = 0 is invalid: it must be positive")
    }

    func testValidSettingsCompile() throws {
        XCTAssertNil(compileError([LSTM(hiddenSize: 3), Dropout(rate: 0), Dense(outputSize: 1)]))
        XCTAssertEqual(LSTM(hiddenSize: 3).invalidSettings, [])
    }

    func testSetWeightsChecksCountAndShapesBeforeChanging() throws {
        let model = Sequential([Dense(outputSize: 1, inputShape: [2])])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        let before = model.weights
        XCTAssertThrowsError(try model.setWeights([Tensor([[2], [-1]])])) { error in
            XCTAssertEqual(error as? WeightError, .countMismatch(expected: 2, actual: 1))
        }
        XCTAssertThrowsError(try model.setWeights([Tensor([[2], [-1]]), Tensor([0.5, 1])])) { error in
            XCTAssertEqual(error as? WeightError, .shapeMismatch(name: "dense/bias", expected: [1], actual: [2]))
        }
        XCTAssertEqual(model.weights.map(\.scalars), before.map(\.scalars))
        try model.setWeights([Tensor([[2], [-1]]), Tensor([0.5])])
        XCTAssertEqual(model.weights.map(\.scalars), [[2, -1], [0.5]])
    }

    func testTensorFromOutsideDataThrows() throws {
        XCTAssertThrowsError(try Tensor(validatingShape: [2, 3], scalars: [1, 2, 3])) { error in
            XCTAssertEqual(error as? TensorError, .countMismatch(shape: [2, 3], expected: 6, actual: 3))
        }
        XCTAssertThrowsError(try Tensor(validatingShape: [-1, 3], scalars: [])) { error in
            XCTAssertEqual(error as? TensorError, .negativeDimension(shape: [-1, 3]))
        }
        XCTAssertThrowsError(try Tensor(validatingShape: [1 << 40, 1 << 40], scalars: [])) { error in
            XCTAssertEqual(error as? TensorError, .countOverflow(shape: [1 << 40, 1 << 40]))
        }
        XCTAssertEqual(try Tensor(validatingShape: [3, 1], scalars: [1, 2, 3]).shape, [3, 1])
    }

    func testPredictAndEvaluateThrowOnWrongInputShape() throws {
        let model = Sequential([LSTM(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 1)])
        try model.compile(loss: .meanSquaredError, optimizer: SGD())
        XCTAssertThrowsError(try model.predict(Tensor.zeros([5, 4, 3]))) { error in
            XCTAssertEqual(error as? TrainingError, .shapeMismatch(name: "x", expected: [4, 2], actual: [4, 3]))
        }
        XCTAssertThrowsError(try model.evaluate(Tensor.zeros([5, 3, 2]), Tensor.zeros([5, 1]))) { error in
            XCTAssertEqual(error as? TrainingError, .shapeMismatch(name: "x", expected: [4, 2], actual: [3, 2]))
        }
    }
}
