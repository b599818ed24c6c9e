import Foundation
import Graph
import Layers
import Serialization
import TestSupport
import Train
import XCTest

/// Saving and loading functional models: the layer graph and weights round-trip to the bit, every edit of
/// `model.json` is refused with an error naming the file and field (or loads), and saves are atomic.
final class FunctionalArchiveTests: XCTestCase {
    private struct Interrupted: Error {}

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("FunctionalArchiveTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    private func descriptionURL(_ directory: URL) -> URL { directory.appendingPathComponent("model.json") }

    /// Keras' encoder–decoder: the encoder LSTM's final state starts the decoder LSTM.
    private func seq2seq(seed: UInt64 = 1) throws -> Model {
        let encoderInputs = Input(shape: [7, 5]), decoderInputs = Input(shape: [4, 5])
        let (_, h, c) = LSTM(hiddenSize: 6, seed: seed)(encoderInputs)
        let decoded = LSTM(hiddenSize: 6, returnSequences: true, seed: seed + 1)(decoderInputs, initialState: [h, c])
        let probabilities = Dense(outputSize: 5, activation: .softmax, seed: seed + 2)(decoded)
        return try Model(inputs: [encoderInputs, decoderInputs], outputs: [probabilities], name: "seq2seq")
    }

    private func seq2seqInputs() -> [Tensor] {
        [Tensor.randomUniform([3, 7, 5], in: 0...1, seed: 11), Tensor.randomUniform([3, 4, 5], in: 0...1, seed: 12)]
    }

    /// Saves, loads, and checks the loaded model against the original: names, parameters, summary, predictions
    /// (bit for bit); a second save of the loaded model writes the same files.
    @discardableResult
    private func assertRoundTrip(_ model: Model, _ x: [Tensor], file: StaticString = #filePath,
                                 line: UInt = #line) throws -> (Model, URL) {
        let directory = try temporaryDirectory().appendingPathComponent("model")
        try model.save(to: directory)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(),
                       ["manifest.json", "model.json", "model.safetensors"], file: file, line: line)
        let loaded = try Model.load(from: directory)
        XCTAssertEqual(loaded.name, model.name, file: file, line: line)
        XCTAssertEqual(loaded.layerNames, model.layerNames, file: file, line: line)
        XCTAssertEqual(loaded.layers.map(\.typeName), model.layers.map(\.typeName), file: file, line: line)
        XCTAssertEqual(loaded.inputShapes, model.inputShapes, file: file, line: line)
        XCTAssertEqual(loaded.outputShapes, model.outputShapes, file: file, line: line)
        XCTAssertEqual(loaded.namedParameters.map(\.name), model.namedParameters.map(\.name), file: file, line: line)
        XCTAssertEqual(loaded.summary(), model.summary(), file: file, line: line)
        XCTAssertTrue(loaded.losses.isEmpty, "a loaded model is not compiled", file: file, line: line)
        for (index, (actual, expected)) in zip(try loaded.predict(x), try model.predict(x)).enumerated() {
            XCTAssertEqual(actual.shape, expected.shape, "output \(index)", file: file, line: line)
            XCTAssertEqual(actual.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), "output \(index)",
                           file: file, line: line)
        }
        let again = try temporaryDirectory().appendingPathComponent("again")
        try loaded.save(to: again)
        // A compiled model records its losses; the loaded one is not compiled.
        for name in model.losses.isEmpty ? ["model.json", "model.safetensors"] : ["model.safetensors"] {
            XCTAssertEqual(try Data(contentsOf: again.appendingPathComponent(name)),
                           try Data(contentsOf: directory.appendingPathComponent(name)), name, file: file, line: line)
        }
        return (loaded, directory)
    }

    // MARK: Round trips

    func testSeq2seqRoundTripsBitForBit() throws {
        let model = try seq2seq()
        let (loaded, directory) = try assertRoundTrip(model, seq2seqInputs())
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        XCTAssertEqual(json["format"] as? String, "unroll.functional")
        XCTAssertEqual(json["formatVersion"] as? Int, 1)
        let calls = try XCTUnwrap(json["calls"] as? [[String: Any]])
        XCTAssertEqual(calls.map { $0["layer"] as? String }, ["input_layer", "input_layer_1", "lstm", "lstm_1", "dense"])
        XCTAssertEqual(calls.map { $0["outputCount"] as? Int }, [1, 1, 3, 3, 1], "the LSTMs return their state")
        let decoderInputs = try XCTUnwrap(calls[3]["inputs"] as? [[String: Int]])
        XCTAssertEqual(decoderInputs, [["call": 1, "output": 0], ["call": 2, "output": 1], ["call": 2, "output": 2]])
        // The decoder still starts from the encoder's state: a different encoder input changes the decoder's output.
        var x = seq2seqInputs()
        let before = try loaded.predict(x)[0]
        x[0] = Tensor.randomUniform([3, 7, 5], in: 0...1, seed: 99)
        XCTAssertNotEqual(try loaded.predict(x)[0].scalars, before.scalars)
    }

    func testTwoInputQuarterlyModelRoundTrips() throws {
        let series = Input(shape: [8, 1]), quarter = Input(shape: [4])
        let features = Concatenate()([LSTM(hiddenSize: 5, seed: 4)(series), quarter])
        let model = try Model(inputs: [series, quarter], outputs: [Dense(outputSize: 1, seed: 5)(features)])
        try model.compile(loss: .meanSquaredError, optimizer: Adam())
        let x = [Tensor.randomUniform([6, 8, 1], in: -1...1, seed: 6),
                 Tensor(shape: [6, 4], scalars: (0..<24).map { $0 % 4 == $0 / 4 % 4 ? 1 : 0 })]
        _ = try model.fit(x, [Tensor.randomUniform([6, 1], in: -1...1, seed: 7)], epochs: 2, batchSize: 3, verbose: .silent)
        let (_, directory) = try assertRoundTrip(model, x)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        XCTAssertEqual(json["losses"] as? [String], ["mean_squared_error"])
    }

    func testSharedLayerIsOneLayerWithTwoCalls() throws {
        let a = Input(shape: [3]), b = Input(shape: [3])
        let shared = Dense(outputSize: 4, activation: .tanh, seed: 7)
        let sum = Add()([shared(a), shared(b)])
        let model = try Model(inputs: [a, b], outputs: [RepeatVector(2)(Multiply()([sum, shared(a)]))])
        let x = [Tensor.randomUniform([2, 3], in: -1...1, seed: 8), Tensor.randomUniform([2, 3], in: -1...1, seed: 9)]
        let (loaded, directory) = try assertRoundTrip(model, x)
        XCTAssertEqual(loaded.parameters.count, 2, "one kernel and one bias for three calls")
        let dense = try XCTUnwrap(loaded.layers.first { $0 is Dense })
        XCTAssertEqual(loaded.calls.filter { $0.layer === dense }.count, 3)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        XCTAssertEqual((json["layers"] as? [Any])?.count, 6)
        XCTAssertEqual((json["calls"] as? [[String: Any]])?.filter { $0["layer"] as? String == "dense" }.count, 3)
    }

    func testMaskedModelsRoundTrip() throws {
        let tokens = Input(shape: [4])
        let embedded = Embedding(vocabularySize: 6, outputSize: 3, maskZero: true, seed: 1)(tokens)
        let model = try Model(inputs: tokens, outputs: LSTM(hiddenSize: 2, seed: 2)(embedded))
        let padded = Tensor(shape: [2, 4], scalars: [3, 5, 0, 0, 1, 2, 4, 0])
        let (loaded, _) = try assertRoundTrip(model, [padded])
        XCTAssertEqual((loaded.layers.first { $0 is Embedding } as? Embedding)?.maskZero, true)
        // The mask survives the round trip: padding does not count.
        let embedding = try XCTUnwrap(loaded.layers.first { $0 is Embedding }), lstm = try XCTUnwrap(loaded.layers.first { $0 is LSTM })
        assertClose(try loaded.predict(Tensor(shape: [1, 4], scalars: [3, 5, 0, 0])),
                    lstm(embedding(Node(Tensor(shape: [1, 2], scalars: [3, 5])))).value, tolerance: 1e-6)

        let series = Input(shape: [5, 2])
        let masked = Masking(maskValue: -1)(series)
        let steps = GRU(hiddenSize: 3, returnSequences: true, dropout: 0.25, recurrentDropout: 0.5, seed: 3)(masked)
        let perStep = try Model(inputs: series, outputs: TimeDistributed(Dense(outputSize: 2, seed: 4))(steps))
        var scalars = Tensor.randomUniform([2, 5, 2], in: 0...1, seed: 5).scalars
        for index in 6..<10 { scalars[index] = -1 }
        let (reloaded, _) = try assertRoundTrip(perStep, [Tensor(shape: [2, 5, 2], scalars: scalars)])
        let gru = try XCTUnwrap(reloaded.layers.first { $0 is GRU } as? GRU)
        XCTAssertEqual([gru.dropout, gru.recurrentDropout], [0.25, 0.5])
        XCTAssertEqual((reloaded.layers.first { $0 is Masking } as? Masking)?.maskValue, -1)
    }

    /// The wiring layers' configurations serve Sequential models too.
    func testWiringLayersSaveInASequentialModel() throws {
        let model = Sequential([Masking(maskValue: -1), LSTM(hiddenSize: 3, dropout: 0.2, recurrentDropout: 0.1, seed: 1),
                                RepeatVector(4), TimeDistributed(Dense(outputSize: 2, seed: 2)), Concatenate(axis: 1),
                                Add(), Multiply()], inputShape: [5, 2])
        let directory = try temporaryDirectory().appendingPathComponent("model")
        try model.save(to: directory)
        let loaded = try Sequential.load(from: directory)
        XCTAssertEqual(loaded.layers.map(\.typeName), ["Masking", "LSTM", "RepeatVector", "TimeDistributed", "Concatenate",
                                                       "Add", "Multiply"])
        XCTAssertEqual((loaded.layers[1] as? LSTM).map { [$0.dropout, $0.recurrentDropout] }, [0.2, 0.1])
        XCTAssertEqual((loaded.layers[4] as? Concatenate)?.axis, 1)
        XCTAssertEqual(loaded.summary(), model.summary())
        let x = Tensor.randomUniform([2, 5, 2], in: 0...1, seed: 3)
        XCTAssertEqual(try loaded.predict(x).scalars.map(\.bitPattern), try model.predict(x).scalars.map(\.bitPattern))
    }

    // MARK: What cannot be saved

    func testLambdaLayerCannotBeSaved() throws {
        let input = Input(shape: [3])
        let doubled = Lambda(name: "Doubling") { $0 * $0.onSameTape(Tensor(shape: [1], scalars: [2])) }(input)
        let model = try Model(inputs: input, outputs: Dense(outputSize: 1)(doubled))
        let directory = try temporaryDirectory().appendingPathComponent("model")
        XCTAssertThrowsError(try model.save(to: directory)) { error in
            guard case let .unsavableLayer(name, typeName, _)? = error as? ModelArchiveError else { return XCTFail("\(error)") }
            XCTAssertEqual([name, typeName], ["doubling", "Doubling"])
            XCTAssertTrue("\(error)".contains("layer 'doubling' (Doubling) cannot be saved"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing is written")

        // An Embedding after another layer would look up whatever that layer computes; predict checks model inputs only.
        let tokens = Input(shape: [4])
        let embedded = Embedding(vocabularySize: 5, outputSize: 2)(Dense(outputSize: 4)(tokens))
        let lookup = try Model(inputs: tokens, outputs: embedded)
        XCTAssertThrowsError(try lookup.save(to: directory)) { error in
            guard case let .unsavableLayer(name, _, reason)? = error as? ModelArchiveError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "embedding")
            XCTAssertTrue(reason.contains("from a model input"), reason)
        }
    }

    // MARK: Atomic saves

    func testInterruptedSaveLeavesTheOldModelAndAFullSaveTheNew() throws {
        let directory = try temporaryDirectory().appendingPathComponent("model")
        let old = try seq2seq(seed: 1), new = try seq2seq(seed: 10)
        let x = seq2seqInputs()
        try old.save(to: directory)
        XCTAssertThrowsError(try new.save(to: directory) { temporary in
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporary.path).sorted(),
                           ["manifest.json", "model.json", "model.safetensors"])
            throw Interrupted()
        }) { XCTAssertTrue($0 is Interrupted, "\($0)") }
        XCTAssertEqual(try Model.load(from: directory).predict(x)[0].scalars, try old.predict(x)[0].scalars)
        try new.save(to: directory, swap: .twoRenames)
        XCTAssertEqual(try Model.load(from: directory).predict(x)[0].scalars, try new.predict(x)[0].scalars)

        // Between the two renames of a save: the old model set aside, the new one complete under its temporary name.
        let folder = directory.deletingLastPathComponent()
        try old.save(to: folder.appendingPathComponent(".model.tmp-1234"))
        try FileManager.default.moveItem(at: directory, to: folder.appendingPathComponent(".model.old-5678"))
        XCTAssertEqual(try Model.load(from: directory).predict(x)[0].scalars, try new.predict(x)[0].scalars,
                       "load reads the complete model set aside")
    }

    // MARK: Invalid descriptions

    /// Saves the seq2seq model, applies `edit` to its `model.json` (and rewrites the manifest to match), and returns
    /// the load error.
    private func loadError(after edit: (inout [String: Any]) -> Void) throws -> (any Error)? {
        let directory = try temporaryDirectory().appendingPathComponent("model")
        try seq2seq().save(to: directory)
        try rewrite(directory, edit)
        do {
            _ = try Model.load(from: directory)
            return nil
        } catch {
            return error
        }
    }

    private func rewrite(_ directory: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: descriptionURL(directory))
        try rewriteManifest(directory)
    }

    private func rewriteManifest(_ directory: URL) throws {
        let names = ["model.json", "model.safetensors"]
        let files = try names.map { ($0, try Data(contentsOf: directory.appendingPathComponent($0))) }
        try ModelManifest(files: files).encoded().write(to: directory.appendingPathComponent("manifest.json"))
    }

    private func editCall(_ index: Int, _ key: String, _ value: Any?) -> (inout [String: Any]) -> Void {
        { object in
            var calls = object["calls"] as! [[String: Any]]
            calls[index][key] = value
            object["calls"] = calls
        }
    }

    private func editLayer(_ index: Int, _ key: String, _ value: Any?) -> (inout [String: Any]) -> Void {
        { object in
            var layers = object["layers"] as! [[String: Any]]
            layers[index][key] = value
            object["layers"] = layers
        }
    }

    func testInvalidGraphsThrowNamingTheFileAndField() throws {
        // The layers, and their calls, in the file's order: input_layer, input_layer_1, lstm, lstm_1, dense.
        let cases: [(String, String, (inout [String: Any]) -> Void)] = [
            ("a tensor of no call", "calls[4].inputs[0].call: 9 is not a call made before this point (0..<4)",
             editCall(4, "inputs", [["call": 9, "output": 0]])),
            ("a cycle", "calls[2].inputs[0].call: 3 is not a call made before this point",
             editCall(2, "inputs", [["call": 3, "output": 0]])),
            ("a call reading itself", "calls[2].inputs[0].call: 2 is not a call made before this point",
             editCall(2, "inputs", [["call": 2, "output": 0]])),
            ("an output a call does not make", "calls[4].inputs[0].output: call 3 makes 3 tensors; 5 is not one of them",
             editCall(4, "inputs", [["call": 3, "output": 5]])),
            ("an unknown layer name", "calls[4].layer: no layer is named 'conv'", editCall(4, "layer", "conv")),
            ("a state call of a Dense", "layer 'dense' (Dense) takes one tensor and makes one", editCall(4, "outputCount", 2)),
            ("a state the call does not make", "calls[2].outputCount: layer 'lstm' makes 3 tensors, not 4", editCall(2, "outputCount", 4)),
            ("a missing count", "calls[0].outputCount is missing", editCall(0, "outputCount", nil)),
            ("an input layer called on a tensor", "calls[1]: an input layer ('input_layer_1') is called once",
             editCall(1, "inputs", [["call": 0, "output": 0]])),
            ("a layer never called", "layer 'dense_9' is never called", { object in
                var layers = object["layers"] as! [[String: Any]]
                layers.append(["name": "dense_9", "type": "dropout", "rate": 0.5])
                object["layers"] = layers
            }),
            ("a call no output needs", "calls[5]: no output needs this call of 'dense'", { object in
                var calls = object["calls"] as! [[String: Any]]
                calls.append(["layer": "dense", "inputs": [["call": 3, "output": 1]], "outputCount": 1])
                object["calls"] = calls
            }),
            ("a name given twice", "layers[1].name: 'input_layer' names two layers", editLayer(1, "name", "input_layer")),
            ("a renamed layer", "layers[4].name: 'head' is named 'dense' by the model", { object in
                self.editLayer(4, "name", "head")(&object)
                self.editCall(4, "layer", "head")(&object)
            }),
            ("a size out of range", "layers[2].cell.hiddenSize: 0 is not a size", { object in
                var layers = object["layers"] as! [[String: Any]]
                var cell = layers[2]["cell"] as! [String: Any]
                cell["hiddenSize"] = 0
                layers[2]["cell"] = cell
                object["layers"] = layers
            }),
            ("an input shape out of range", "layers[0].shape", editLayer(0, "shape", [7, -5])),
            ("an output of no call", "outputs[0].call: 8 is not a call", { $0["outputs"] = [["call": 8, "output": 0]] }),
            ("no inputs", "a model needs at least one input", { $0["inputs"] = [Any]() }),
            ("an Embedding after a layer", "calls[4].inputs[0]: layer 'lstm_9': an Embedding reads token indices", { object in
                self.editLayer(4, "type", "embedding")(&object)
                self.editLayer(4, "name", "lstm_9")(&object)
                self.editLayer(4, "vocabularySize", 5)(&object)
                self.editCall(4, "layer", "lstm_9")(&object)
            }),
            ("a disconnected input", "is not connected to any output", { object in
                object["outputs"] = [["call": 2, "output": 0]]
            }),
        ]
        for (label, expected, edit) in cases {
            let error = try loadError(after: edit)
            guard case let .invalidDescription(file, reason)? = error as? ModelArchiveError else {
                XCTFail("\(label): expected invalidDescription, got \(String(describing: error))")
                continue
            }
            XCTAssertTrue(file.hasSuffix("/model.json"), label)
            XCTAssertTrue(reason.contains(expected), "\(label): \(reason)")
        }
        guard case let .unknownLayerKind(_, kind, location)? = try loadError(after: editLayer(4, "type", "conv2d")) as? ModelArchiveError else {
            return XCTFail("an unknown layer type should be named")
        }
        XCTAssertEqual([kind, location], ["conv2d", "layers[4].type"])
        guard case .unsupportedFormatVersion(_, 2, 1)? = try loadError(after: { $0["formatVersion"] = 2 }) as? ModelArchiveError else {
            return XCTFail("a newer version should be named")
        }
    }

    /// A graph whose shapes do not fit is refused at load with the error its construction throws.
    func testShapeMismatchIsRefusedWithTheConstructionError() throws {
        let encoderInputs = Input(shape: [7, 5]), decoderInputs = Input(shape: [4])
        let (_, h, c) = LSTM(hiddenSize: 6, seed: 1)(encoderInputs)
        let decoded = LSTM(hiddenSize: 6, returnSequences: true, seed: 2)(decoderInputs, initialState: [h, c])
        let probabilities = Dense(outputSize: 5, activation: .softmax, seed: 3)(decoded)
        var constructionError: (any Error)?
        XCTAssertThrowsError(try Model(inputs: [encoderInputs, decoderInputs], outputs: [probabilities])) { constructionError = $0 }
        let expected = try XCTUnwrap(constructionError as? ModelError)
        XCTAssertTrue(expected.description.contains("lstm_1 (LSTM) cannot take input_layer_1 (InputLayer) (None, 4)"),
                      expected.description)

        let error = try loadError(after: editLayer(1, "shape", [4]))
        guard case let .invalidDescription(_, reason)? = error as? ModelArchiveError else {
            return XCTFail("expected invalidDescription, got \(String(describing: error))")
        }
        XCTAssertEqual(reason, expected.description)
    }

    func testTheTwoKindsAreToldApart() throws {
        let folder = try temporaryDirectory()
        let functional = folder.appendingPathComponent("functional"), sequential = folder.appendingPathComponent("sequential")
        try seq2seq().save(to: functional)
        try Sequential([Dense(outputSize: 1, inputShape: [2])]).save(to: sequential)
        XCTAssertEqual(try ModelDirectory.kind(of: functional), .functional)
        XCTAssertEqual(try ModelDirectory.kind(of: sequential), .sequential)
        XCTAssertThrowsError(try Sequential.load(from: functional)) { error in
            XCTAssertTrue("\(error)".contains("a functional model (format 'unroll.functional')"), "\(error)")
        }
        XCTAssertThrowsError(try Model.load(from: sequential)) { error in
            XCTAssertTrue("\(error)".contains("load it with Sequential.load(from:)"), "\(error)")
        }
    }
}
