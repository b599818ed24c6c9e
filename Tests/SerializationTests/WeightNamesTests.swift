import Foundation
import Graph
import Layers
import Serialization
import Train
import XCTest

/// Every layer kind's parameters under their three names, written down from the formats' own conventions:
/// Keras 3 (`model.weights` paths `lstm/lstm_cell/kernel`; weights files `layers/lstm/cell/vars/0`,
/// `layers/bidirectional/forward_layer/cell/vars/0`) and PyTorch (`state_dict()` keys `weight_ih_l0`,
/// `bias_hh_l1`, `weight_ih_l0_reverse`; `Linear.weight [out, in]`; `Embedding.weight [vocabulary, features]`),
/// as printed by Keras 3.15 and PyTorch 2 for the same shapes. PyTorch has no peephole LSTM, IndRNN or
/// reset-before GRU: their rows follow the same suffix rule with Unroll's own names (`peephole_i_l0`,
/// `recurrent_weight_l0`, `bias_l0`), as ``Sequential/pyTorchStateDict()`` documents.
final class WeightNamesTests: XCTestCase {
    /// Unroll's name (`model.safetensors`), the Keras-dictionary name, the Keras weights-file dataset (`nil`: Keras
    /// files cannot hold it) and PyTorch's names with their shapes (`nil`: PyTorch has no twin).
    typealias Row = (unroll: String, keras: String, kerasFile: String?, pyTorch: [(String, [Int])]?)

    let expected: [Row] = [
        ("embedding/embeddings", "embedding/embeddings", "layers/embedding/vars/0", [("embedding.weight", [5, 4])]),
        ("simple_rnn/kernel", "simple_rnn/kernel", "layers/simple_rnn/cell/vars/0", [("simple_rnn.weight_ih_l0", [2, 4])]),
        ("simple_rnn/recurrent_kernel", "simple_rnn/recurrent_kernel", "layers/simple_rnn/cell/vars/1",
         [("simple_rnn.weight_hh_l0", [2, 2])]),
        ("simple_rnn/bias", "simple_rnn/bias", "layers/simple_rnn/cell/vars/2",
         [("simple_rnn.bias_ih_l0", [2]), ("simple_rnn.bias_hh_l0", [2])]),
        ("lstm/kernel", "lstm/kernel", "layers/lstm/cell/vars/0", [("lstm.weight_ih_l0", [12, 2])]),
        ("lstm/recurrent_kernel", "lstm/recurrent_kernel", "layers/lstm/cell/vars/1", [("lstm.weight_hh_l0", [12, 3])]),
        ("lstm/bias", "lstm/bias", "layers/lstm/cell/vars/2", [("lstm.bias_ih_l0", [12]), ("lstm.bias_hh_l0", [12])]),
        ("gru/kernel", "gru/kernel", "layers/gru/cell/vars/0", [("gru.weight_ih_l0", [6, 3])]),
        ("gru/recurrent_kernel", "gru/recurrent_kernel", "layers/gru/cell/vars/1", [("gru.weight_hh_l0", [6, 2])]),
        ("gru/bias", "gru/bias", "layers/gru/cell/vars/2", [("gru.bias_ih_l0", [6]), ("gru.bias_hh_l0", [6])]),
        ("gru_1/kernel", "gru_1/kernel", "layers/gru_1/cell/vars/0", [("gru_1.weight_ih_l0", [6, 2])]),
        ("gru_1/recurrent_kernel", "gru_1/recurrent_kernel", "layers/gru_1/cell/vars/1", [("gru_1.weight_hh_l0", [6, 2])]),
        ("gru_1/bias", "gru_1/bias", "layers/gru_1/cell/vars/2", [("gru_1.bias_l0", [6])]),
        ("peephole_lstm/kernel", "peephole_lstm/kernel", nil, [("peephole_lstm.weight_ih_l0", [8, 2])]),
        ("peephole_lstm/recurrent_kernel", "peephole_lstm/recurrent_kernel", nil, [("peephole_lstm.weight_hh_l0", [8, 2])]),
        ("peephole_lstm/bias", "peephole_lstm/bias", nil,
         [("peephole_lstm.bias_ih_l0", [8]), ("peephole_lstm.bias_hh_l0", [8])]),
        ("peephole_lstm/input_gate_peephole_weights", "peephole_lstm/input_gate_peephole_weights", nil,
         [("peephole_lstm.peephole_i_l0", [2])]),
        ("peephole_lstm/forget_gate_peephole_weights", "peephole_lstm/forget_gate_peephole_weights", nil,
         [("peephole_lstm.peephole_f_l0", [2])]),
        ("peephole_lstm/output_gate_peephole_weights", "peephole_lstm/output_gate_peephole_weights", nil,
         [("peephole_lstm.peephole_o_l0", [2])]),
        ("ind_rnn/kernel", "ind_rnn/kernel", nil, [("ind_rnn.weight_ih_l0", [2, 2])]),
        ("ind_rnn/recurrent_kernel", "ind_rnn/recurrent_kernel", nil, [("ind_rnn.recurrent_weight_l0", [2])]),
        ("ind_rnn/bias", "ind_rnn/bias", nil, [("ind_rnn.bias_l0", [2])]),
        ("bidirectional/kernel", "bidirectional/forward_lstm/kernel", "layers/bidirectional/forward_layer/cell/vars/0",
         [("bidirectional.weight_ih_l0", [8, 2])]),
        ("bidirectional/recurrent_kernel", "bidirectional/forward_lstm/recurrent_kernel",
         "layers/bidirectional/forward_layer/cell/vars/1", [("bidirectional.weight_hh_l0", [8, 2])]),
        ("bidirectional/bias", "bidirectional/forward_lstm/bias", "layers/bidirectional/forward_layer/cell/vars/2",
         [("bidirectional.bias_ih_l0", [8]), ("bidirectional.bias_hh_l0", [8])]),
        ("bidirectional/kernel_1", "bidirectional/backward_lstm/kernel", "layers/bidirectional/backward_layer/cell/vars/0",
         [("bidirectional.weight_ih_l0_reverse", [8, 2])]),
        ("bidirectional/recurrent_kernel_1", "bidirectional/backward_lstm/recurrent_kernel",
         "layers/bidirectional/backward_layer/cell/vars/1", [("bidirectional.weight_hh_l0_reverse", [8, 2])]),
        ("bidirectional/bias_1", "bidirectional/backward_lstm/bias", "layers/bidirectional/backward_layer/cell/vars/2",
         [("bidirectional.bias_ih_l0_reverse", [8]), ("bidirectional.bias_hh_l0_reverse", [8])]),
        ("stacked_lstm/kernel", "stacked_lstm/cell_0/kernel", nil, [("stacked_lstm.weight_ih_l0", [8, 4])]),
        ("stacked_lstm/recurrent_kernel", "stacked_lstm/cell_0/recurrent_kernel", nil, [("stacked_lstm.weight_hh_l0", [8, 2])]),
        ("stacked_lstm/bias", "stacked_lstm/cell_0/bias", nil,
         [("stacked_lstm.bias_ih_l0", [8]), ("stacked_lstm.bias_hh_l0", [8])]),
        ("stacked_lstm/kernel_1", "stacked_lstm/cell_1/kernel", nil, [("stacked_lstm.weight_ih_l1", [8, 2])]),
        ("stacked_lstm/recurrent_kernel_1", "stacked_lstm/cell_1/recurrent_kernel", nil, [("stacked_lstm.weight_hh_l1", [8, 2])]),
        ("stacked_lstm/bias_1", "stacked_lstm/cell_1/bias", nil,
         [("stacked_lstm.bias_ih_l1", [8]), ("stacked_lstm.bias_hh_l1", [8])]),
        ("echo_state_network/kernel", "echo_state_network/kernel", nil, nil),
        ("echo_state_network/recurrent_kernel", "echo_state_network/recurrent_kernel", nil, nil),
        ("echo_state_network/bias", "echo_state_network/bias", nil, nil),
        ("echo_state_network/readout_kernel", "echo_state_network/readout_kernel", nil, nil),
        ("echo_state_network/readout_bias", "echo_state_network/readout_bias", nil, nil),
        ("dense/kernel", "dense/kernel", "layers/dense/vars/0", [("dense.weight", [1, 2])]),
        ("dense/bias", "dense/bias", "layers/dense/vars/1", [("dense.bias", [1])]),
    ]

    func makeModel(keeping include: (any Layer) -> Bool = { _ in true }) -> Sequential {
        Sequential([
            Embedding(vocabularySize: 5, outputSize: 4, inputShape: [6]),
            SimpleRNN(hiddenSize: 2, returnSequences: true),
            LSTM(hiddenSize: 3, returnSequences: true),
            GRU(hiddenSize: 2, returnSequences: true),
            RNN(GRUCell(hiddenSize: 2, resetAfter: false), returnSequences: true),
            RNN(PeepholeLSTMCell(hiddenSize: 2), returnSequences: true),
            RNN(IndRNNCell(hiddenSize: 2), returnSequences: true),
            Bidirectional(LSTM(hiddenSize: 2, returnSequences: true)),
            RNN(StackedCells([LSTMCell(hiddenSize: 2), LSTMCell(hiddenSize: 2)]), returnSequences: true),
            EchoStateNetwork(reservoirSize: 3, outputSize: 2, returnSequences: true),
            Dropout(rate: 0.1),
            Dense(outputSize: 1),
        ].filter(include))
    }

    func testEveryParameterOfEveryLayerKindHasItsThreeNames() throws {
        let model = makeModel()
        let keras = try model.kerasWeights()
        let identities = WeightNames.identities(of: model.layers, names: model.layerNames)
        XCTAssertEqual(identities.count, expected.count)
        XCTAssertEqual(model.namedParameters.map(\.name), expected.map(\.unroll))
        XCTAssertEqual(keras.keys.sorted(), expected.map(\.keras).sorted())
        for (identity, row) in zip(identities, expected) {
            XCTAssertEqual(identity.unrollName, row.unroll)
            XCTAssertEqual(identity.kerasName, row.keras)
            XCTAssertEqual(keras[row.keras]?.shape, identity.parameter.shape, row.keras)
            let variable = try? identity.kerasVariable()
            XCTAssertEqual(variable.map { "\($0.group)/\($0.index)" }, row.kerasFile, row.unroll)
            XCTAssertEqual(identity.pyTorchNames, row.pyTorch?.map(\.0), row.unroll)
            let shapes = identity.pyTorchLayout?.pyTorchTensors(from: identity.parameter.value).map(\.shape)
            XCTAssertEqual(shapes, row.pyTorch?.map(\.1), row.unroll)
        }
        XCTAssertThrowsError(try model.pyTorchStateDict()) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "EchoStateNetwork"))
        }
    }

    /// The PyTorch rows without the echo state network are exactly `pyTorchStateDict()`'s keys and shapes, and
    /// every Keras-file row is where `saveWeights(kerasH5:)` puts the parameter.
    func testTheDictionariesAndFilesUseTheTableNames() throws {
        let model = makeModel { !($0 is EchoStateNetwork) }
        let stateDict = try model.pyTorchStateDict()
        let pyTorchRows = expected.compactMap(\.pyTorch).flatMap { $0 }
        XCTAssertEqual(stateDict.keys.sorted(), pyTorchRows.map(\.0).sorted())
        for (name, shape) in pyTorchRows { XCTAssertEqual(stateDict[name]?.shape, shape, name) }

        // Keras files hold no peephole, IndRNN or stacked cells (nor an echo state network).
        let kerasModel = makeModel { !["PeepholeLSTM", "IndRNN", "StackedLSTM", "EchoStateNetwork"].contains($0.typeName) }
        let identities = WeightNames.identities(of: kerasModel.layers, names: kerasModel.layerNames)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("names-\(UUID().uuidString).weights.h5")
        defer { try? FileManager.default.removeItem(at: url) }
        try kerasModel.saveWeights(kerasH5: url)
        let file = try HDF5File(bytes: Array(try Data(contentsOf: url)), source: url.path)
        for identity in identities {
            let (group, index) = try identity.kerasVariable()
            let dataset = try XCTUnwrap(try file.datasets(inGroupAt: group)[String(index)], "\(group)/\(index)")
            XCTAssertEqual(dataset.shape, identity.parameter.shape, identity.unrollName)
            XCTAssertEqual(dataset.values.map { Float($0) }, identity.parameter.value.scalars, identity.unrollName)
        }
    }

    /// Gate orders from the table: PyTorch's GRU r, z, n is Unroll's (Keras') z, r, h with the first two blocks
    /// swapped, kernels transposed; a `resetAfter` bias's two rows are `bias_ih` and `bias_hh`.
    func testGRULayoutSwapsTheFirstTwoGateBlocks() throws {
        let model = Sequential([GRU(hiddenSize: 1)], inputShape: [2, 1])
        _ = try model.pyTorchStateDict()  // builds the layers
        let cell = try XCTUnwrap((model.layers[0] as? RNN<GRUCell>)?.cell)
        cell.parameters[0].value = Tensor(shape: [1, 3], scalars: [1, 2, 3])          // z, r, h
        cell.parameters[2].value = Tensor(shape: [2, 3], scalars: [4, 5, 6, 7, 8, 9])
        let stateDict = try model.pyTorchStateDict()
        XCTAssertEqual(stateDict["gru.weight_ih_l0"], Tensor(shape: [3, 1], scalars: [2, 1, 3]))  // r, z, n
        XCTAssertEqual(stateDict["gru.bias_ih_l0"], Tensor([5, 4, 6]))
        XCTAssertEqual(stateDict["gru.bias_hh_l0"], Tensor([8, 7, 9]))
    }
}
