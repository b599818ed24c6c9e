import Foundation
import Graph
import Layers
import Serialization
import TestSupport
import Train
import XCTest

/// A user's cell the archive does not know: `h' = tanh(x W + h·decay)`.
private final class LeakyTanhCell: RecurrentCell {
    let hiddenSize: Int
    var parameters: [Parameter] = []
    var inputSize: Int? { parameters.first?.shape[0] }
    var typeName: String { "LeakyTanh" }

    init(hiddenSize: Int) { self.hiddenSize = hiddenSize }

    func build(inputSize: Int) {
        guard parameters.isEmpty else { return }
        parameters = [Parameter("kernel", Tensor.randomUniform([inputSize, hiddenSize], in: -0.5...0.5, seed: 3)),
                      Parameter("decay", Tensor(shape: [hiddenSize], repeating: 0.5))]
    }

    func zeroState(batchSize: Int) -> Node { Node(Tensor.zeros([batchSize, hiddenSize])) }

    func callAsFunction(_ input: Node, state h: Node) -> (output: Node, state: Node) {
        let next = tanh(input.matmul(input.onSameTape(parameters[0])) + h * h.onSameTape(parameters[1]))
        return (next, next)
    }
}

/// Saving and loading model directories, and importing PyTorch and Keras weights.
final class ModelArchiveTests: XCTestCase {
    // MARK: Helpers

    private struct Interrupted: Error {}

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("ModelArchiveTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    private func descriptionURL(_ directory: URL) -> URL { directory.appendingPathComponent("model.json") }
    private func weightsURL(_ directory: URL) -> URL { directory.appendingPathComponent("model.safetensors") }

    /// Asserts equal shapes and bit patterns.
    private func assertBitIdentical(_ actual: Tensor, _ expected: Tensor, _ label: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, label, file: file, line: line)
        XCTAssertEqual(actual.scalars.map(\.bitPattern), expected.scalars.map(\.bitPattern), label, file: file, line: line)
    }

    /// Saves `model`, loads it back, and checks names and bit-identical predictions on `x`; returns the loaded model.
    @discardableResult
    private func assertRoundTrip(_ model: Sequential, _ x: Tensor, _ label: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws -> Sequential {
        let directory = try temporaryDirectory().appendingPathComponent("model")
        try model.save(to: directory)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(),
                       ["manifest.json", "model.json", "model.safetensors"], label, file: file, line: line)
        let loaded = try Sequential.load(from: directory)
        XCTAssertEqual(loaded.layerNames, model.layerNames, label, file: file, line: line)
        XCTAssertEqual(loaded.layers.map(\.typeName), model.layers.map(\.typeName), label, file: file, line: line)
        XCTAssertEqual(loaded.namedParameters.map(\.name), model.namedParameters.map(\.name), label, file: file, line: line)
        XCTAssertEqual(loaded.inputShape, model.inputShape, label, file: file, line: line)
        XCTAssertEqual(loaded.name, model.name, label, file: file, line: line)
        XCTAssertNil(loaded.loss, "a loaded model is not compiled", file: file, line: line)
        assertBitIdentical(try loaded.predict(x), try model.predict(x), "\(label) predictions", file: file, line: line)
        // Saving the loaded model writes the same two files: nothing was lost on the way.
        let again = directory.deletingLastPathComponent().appendingPathComponent("again")
        try loaded.save(to: again)
        XCTAssertEqual(try Data(contentsOf: weightsURL(again)), try Data(contentsOf: weightsURL(directory)), label,
                       file: file, line: line)
        return loaded
    }

    /// Removes `manifest.json`, leaving a directory as saves made before manifests wrote it, so that an edited
    /// file reaches its own format's checks instead of failing the manifest's CRC first (ModelDirectoryTests).
    private func removeManifest(_ directory: URL) throws {
        try FileManager.default.removeItem(at: directory.appendingPathComponent("manifest.json"))
    }

    /// A small saved model without its manifest: LSTM(3) then Dense(2), input [4, 2].
    private func savedSmallModel() throws -> (model: Sequential, directory: URL, x: Tensor) {
        Initializers.resetSeedSequence(to: 11)
        let model = Sequential([LSTM(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 2)])
        let directory = try temporaryDirectory()
        try model.save(to: directory)
        try removeManifest(directory)
        return (model, directory, Tensor.randomUniform([2, 4, 2], in: -1...1, seed: 5))
    }

    /// Loads `directory`, expecting a typed error; returns it.
    private func loadError(_ directory: URL, _ label: String, file: StaticString = #filePath, line: UInt = #line) -> (any Error)? {
        do {
            _ = try Sequential.load(from: directory)
            XCTFail("\(label): loaded without error", file: file, line: line)
            return nil
        } catch {
            XCTAssertTrue(error is ModelArchiveError || error is SafeTensorsError || error is WeightError,
                          "\(label): untyped error \(error)", file: file, line: line)
            return error
        }
    }

    /// Rewrites `model.json` through `edit` (on its parsed JSON object), loads, and returns the archive error.
    private func loadErrorAfterEditing(_ directory: URL, _ label: String, file: StaticString = #filePath, line: UInt = #line,
                                       _ edit: (inout [String: Any]) -> Void) throws -> ModelArchiveError? {
        let url = descriptionURL(directory)
        let original = try Data(contentsOf: url)
        defer { try? original.write(to: url) }
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
        let error = loadError(directory, label, file: file, line: line)
        guard let archiveError = error as? ModelArchiveError else {
            XCTFail("\(label): expected a ModelArchiveError, got \(String(describing: error))", file: file, line: line)
            return nil
        }
        return archiveError
    }

    private func fixtureStateDict(_ name: String, prefix: String, suffix: String) throws -> [String: Tensor] {
        let fixture = try Fixture(name)
        return try Dictionary(uniqueKeysWithValues: fixture.keys("params").map {
            (prefix + $0 + suffix, try fixture.tensor("params", $0))
        })
    }

    // MARK: Round trips

    func testLSTMGRUDenseRoundTripIsBitIdentical() throws {
        Initializers.resetSeedSequence(to: 1)
        let model = Sequential([LSTM(hiddenSize: 5, inputShape: [6, 3], returnSequences: true, unitForgetBias: false),
                                GRU(hiddenSize: 4), Dense(outputSize: 2, activation: .tanh)], name: "forecaster")
        try model.compile(loss: .meanAbsoluteError, optimizer: Adam())
        let x = Tensor.randomUniform([3, 6, 3], in: -1...1, seed: 2)
        let loaded = try assertRoundTrip(model, x, "LSTM, GRU, Dense")
        XCTAssertEqual((loaded.layers[0] as? LSTM)?.returnSequences, true)
        XCTAssertEqual((loaded.layers[0] as? LSTM)?.cell.unitForgetBias, false)
        XCTAssertEqual((loaded.layers[1] as? GRU)?.cell.resetAfter, true)
        XCTAssertEqual((loaded.layers[2] as? Dense)?.activation, .tanh)

        // A fresh model of the same architecture predicts differently: the weights came from the file.
        let fresh = Sequential([LSTM(hiddenSize: 5, inputShape: [6, 3], returnSequences: true), GRU(hiddenSize: 4),
                                Dense(outputSize: 2, activation: .tanh)])
        XCTAssertNotEqual(try fresh.predict(x).scalars, try loaded.predict(x).scalars)

        let directory = try temporaryDirectory()
        try model.save(to: directory)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        XCTAssertEqual(json["format"] as? String, "unroll.sequential")
        XCTAssertEqual(json["formatVersion"] as? Int, 1)
        XCTAssertEqual(json["inputShape"] as? [Int], [6, 3])
        XCTAssertEqual(json["loss"] as? String, "mean_absolute_error")
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["type"] as? String }, ["rnn", "rnn", "dense"])
        let cell = try XCTUnwrap(layers[1]["cell"] as? [String: Any])
        XCTAssertEqual(cell["kind"] as? String, "gru")
        XCTAssertEqual(cell["hiddenSize"] as? Int, 4)
        XCTAssertEqual(layers[2]["outputSize"] as? Int, 2)
        XCTAssertEqual(layers[2]["activation"] as? String, "tanh")
    }

    func testBidirectionalRoundTripKeepsMergeModes() throws {
        Initializers.resetSeedSequence(to: 3)
        let model = Sequential([Bidirectional(LSTM(hiddenSize: 3, returnSequences: true), mergeMode: .sum),
                                Bidirectional(GRU(hiddenSize: 2, resetAfter: false)), Dense(outputSize: 1)],
                               inputShape: [5, 2])
        let loaded = try assertRoundTrip(model, Tensor.randomUniform([4, 5, 2], in: -1...1, seed: 4), "Bidirectional")
        XCTAssertEqual((loaded.layers[0] as? Bidirectional<LSTMCell>)?.mergeMode, .sum)
        XCTAssertEqual((loaded.layers[0] as? Bidirectional<LSTMCell>)?.backward.goBackwards, true)
        XCTAssertEqual((loaded.layers[1] as? Bidirectional<GRUCell>)?.mergeMode, .concatenate)
        XCTAssertEqual((loaded.layers[1] as? Bidirectional<GRUCell>)?.forward.cell.resetAfter, false)
        XCTAssertEqual(loaded.outputShape, [1])
    }

    func testEmbeddingSimpleRNNDropoutIndRNNPeepholeRoundTrip() throws {
        Initializers.resetSeedSequence(to: 5)
        let model = Sequential([Embedding(vocabularySize: 7, outputSize: 3, inputShape: [5]),
                                SimpleRNN(hiddenSize: 4, activation: .relu, returnSequences: true),
                                Dropout(rate: 0.25),
                                IndRNN(hiddenSize: 3, returnSequences: true, recurrentBound: 1.5),
                                PeepholeLSTM(hiddenSize: 2, returnSequences: true, goBackwards: true),
                                IndRNN(hiddenSize: 2, isStateful: true),
                                Dense(outputSize: 1, usesBias: false)])
        let x = Tensor(shape: [2, 5], scalars: [0, 6, 2, 3, 1, 5, 5, 4, 0, 2])
        let loaded = try assertRoundTrip(model, x, "Embedding, SimpleRNN, Dropout, IndRNN, PeepholeLSTM")
        XCTAssertEqual((loaded.layers[0] as? Embedding)?.vocabularySize, 7)
        XCTAssertEqual((loaded.layers[1] as? SimpleRNN)?.cell.activation, .relu)
        XCTAssertEqual((loaded.layers[2] as? Dropout)?.rate, 0.25)
        XCTAssertEqual((loaded.layers[3] as? IndRNN)?.cell.recurrentBound, 1.5)
        XCTAssertEqual((loaded.layers[4] as? PeepholeLSTM)?.goBackwards, true)
        XCTAssertEqual((loaded.layers[5] as? IndRNN)?.isStateful, true)
        XCTAssertNil((loaded.layers[5] as? IndRNN)?.cell.recurrentBound)
        XCTAssertEqual((loaded.layers[6] as? Dense)?.usesBias, false)
    }

    func testStackedCellsRoundTrip() throws {
        Initializers.resetSeedSequence(to: 6)
        let model = Sequential([RNN(StackedCells([GRUCell(hiddenSize: 4), GRUCell(hiddenSize: 3, resetAfter: false)]),
                                    returnSequences: true, inputShape: [4, 2]),
                                Bidirectional(RNN(StackedCells([LSTMCell(hiddenSize: 2), LSTMCell(hiddenSize: 2)]))),
                                Dense(outputSize: 1)])
        let loaded = try assertRoundTrip(model, Tensor.randomUniform([3, 4, 2], in: -1...1, seed: 7), "stacked cells")
        let stack = try XCTUnwrap(loaded.layers[0] as? RNN<StackedCells<GRUCell>>)
        XCTAssertEqual(stack.cell.cells.map(\.hiddenSize), [4, 3])
        XCTAssertEqual(stack.cell.cells.map(\.resetAfter), [true, false])
    }

    func testEchoStateNetworkRoundTrip() throws {
        Initializers.resetSeedSequence(to: 9)
        let network = EchoStateNetwork(reservoirSize: 12, outputSize: 3, spectralRadius: 0.8, leakRate: 0.4,
                                       inputScaling: 0.7, connectivity: 0.3, returnSequences: true, inputShape: [6, 2])
        let model = Sequential([network, Dense(outputSize: 1)])
        let loaded = try assertRoundTrip(model, Tensor.randomUniform([2, 6, 2], in: -1...1, seed: 10), "echo state network")
        let reloaded = try XCTUnwrap(loaded.layers[0] as? EchoStateNetwork)
        XCTAssertEqual(reloaded.reservoirSize, 12)
        XCTAssertEqual(reloaded.spectralRadius, 0.8)
        XCTAssertEqual(reloaded.leakRate, 0.4)
        XCTAssertEqual(reloaded.inputScaling, 0.7)
        XCTAssertEqual(reloaded.connectivity, 0.3)
        XCTAssertTrue(reloaded.returnSequences)
        // The reservoir is the saved one, not a fresh draw.
        XCTAssertEqual(reloaded.recurrentKernel?.value, network.recurrentKernel?.value)
        XCTAssertEqual(reloaded.recurrentKernel?.isTrainable, false)

        XCTAssertEqual(try model.kerasWeights().keys.sorted().filter { $0.hasPrefix("echo") }, [
            "echo_state_network/bias", "echo_state_network/kernel", "echo_state_network/readout_bias",
            "echo_state_network/readout_kernel", "echo_state_network/recurrent_kernel",
        ])
        XCTAssertThrowsError(try model.pyTorchStateDict()) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "EchoStateNetwork"))
        }

        let directory = try temporaryDirectory()
        try model.save(to: directory)
        try removeManifest(directory)
        func setField(_ object: inout [String: Any], _ key: String, _ value: Any) {
            var layers = object["layers"] as! [[String: Any]]
            layers[0][key] = value
            object["layers"] = layers
        }
        for (key, value, expected) in [("leakRate", 1.5, "layers[0].leakRate: 1.5 is not a rate in [0, 1]"),
                                       ("connectivity", 0, "layers[0].connectivity: 0 is not a probability in (0, 1]"),
                                       ("spectralRadius", -0.5, "layers[0].spectralRadius: -0.5 is not a finite number"),
                                       ("inputScaling", 1e300, "layers[0].inputScaling: 1e+300 is not a finite number"),
                                       ("reservoirSize", 0, "layers[0].reservoirSize: 0 is not a size")] {
            let error = try loadErrorAfterEditing(directory, key) { setField(&$0, key, value) }
            guard case let .invalidDescription(_, reason)? = error else {
                XCTFail("\(key): expected invalidDescription, got \(String(describing: error))")
                continue
            }
            XCTAssertTrue(reason.contains(expected), "\(key): \(reason)")
        }
    }

    // MARK: Corrupted files

    func testTruncatedWeightsFileThrows() throws {
        let (_, directory, _) = try savedSmallModel()
        let bytes = try Data(contentsOf: weightsURL(directory))
        let headerEnd = 8 + Int(bytes.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let offsets = Set(Array(0..<headerEnd) + Array(stride(from: headerEnd, to: bytes.count, by: 7)) + [bytes.count - 1])
        for offset in offsets.sorted() {
            try bytes.prefix(offset).write(to: weightsURL(directory))
            _ = loadError(directory, "truncated to \(offset) of \(bytes.count) bytes")
        }
        try bytes.write(to: weightsURL(directory))
        XCTAssertNoThrow(try Sequential.load(from: directory))
    }

    func testFlippedWeightsBytesThrow() throws {
        let (_, directory, _) = try savedSmallModel()
        let bytes = try Data(contentsOf: weightsURL(directory))
        for offset in 0..<bytes.count {
            var flipped = bytes
            flipped[offset] ^= UInt8(1 << (offset % 8))
            try flipped.write(to: weightsURL(directory))
            _ = loadError(directory, "bit \(offset % 8) of byte \(offset) flipped")
        }
        // A flip in the data section is the safetensors checksum's to catch, before the archive's own.
        var flipped = bytes
        flipped[bytes.count - 3] ^= 0x40
        try flipped.write(to: weightsURL(directory))
        guard case .checksumMismatch? = loadError(directory, "data flip") as? SafeTensorsError else {
            return XCTFail("a flipped weight should fail the safetensors checksum")
        }
    }

    func testMissingFilesThrow() throws {
        let (_, directory, _) = try savedSmallModel()
        try FileManager.default.removeItem(at: weightsURL(directory))
        XCTAssertEqual(loadError(directory, "no weights") as? ModelArchiveError, .missingFile(path: weightsURL(directory).path))
        let empty = try temporaryDirectory()
        XCTAssertEqual(loadError(empty, "empty directory") as? ModelArchiveError, .missingFile(path: descriptionURL(empty).path))
    }

    func testTruncatedDescriptionThrows() throws {
        let (_, directory, _) = try savedSmallModel()
        let json = try Data(contentsOf: descriptionURL(directory))
        for length in stride(from: 0, to: json.count, by: 3) {
            try json.prefix(length).write(to: descriptionURL(directory))
            guard case let .invalidDescription(file, reason)? = loadError(directory, "json cut at \(length)") as? ModelArchiveError else {
                XCTFail("json cut at \(length): expected invalidDescription")
                continue
            }
            XCTAssertEqual(file, descriptionURL(directory).path)
            XCTAssertTrue(reason.hasPrefix("not valid JSON: line "), "cut at \(length): \(reason)")
        }
    }

    func testSyntaxErrorsNameLineAndColumn() throws {
        let (_, directory, _) = try savedSmallModel()
        let cases = [
            ("{\n  \"format\": \"unroll.sequential\",\n  \"formatVersion\": tru\n}", "line 3, column 20: expected a value"),
            ("{\"format\": \"unroll.sequential\",\n \"layers\": [1, 2,]}", "line 2, column 18: expected a value"),
            ("{\"format\" \"unroll.sequential\"}", "line 1, column 11: expected ':' after an object key"),
            ("{\"name\": \"a\tb\"}", "line 1, column 12: unescaped control character in a string"),
            ("{\"size\": 012}", "line 1, column 10: leading zero in a number"),
            ("{} {}", "line 1, column 4: unexpected text after the JSON value"),
            ("{\"layers\": [{\"a\": 1,\n \"a\": 2}]}", "line 2, column 2: the key \"a\" appears twice in the object at layers[0]"),
            (String(repeating: "[", count: 100_000), "nested deeper than 512 levels"),
        ]
        for (text, expected) in cases {
            try Data(text.utf8).write(to: descriptionURL(directory))
            guard case let .invalidDescription(_, reason)? = loadError(directory, expected) as? ModelArchiveError else {
                XCTFail("\(expected): expected invalidDescription")
                continue
            }
            XCTAssertTrue(reason.contains(expected), "\(expected): \(reason)")
        }
    }

    func testInvalidDescriptionsThrowNamingTheField() throws {
        let (_, directory, _) = try savedSmallModel()
        func cell(_ object: inout [String: Any], _ key: String, _ value: Any) {
            var layers = object["layers"] as! [[String: Any]]
            var cell = layers[0]["cell"] as! [String: Any]
            cell[key] = value
            layers[0]["cell"] = cell
            object["layers"] = layers
        }
        func layer(_ object: inout [String: Any], _ index: Int, _ key: String, _ value: Any) {
            var layers = object["layers"] as! [[String: Any]]
            layers[index][key] = value
            object["layers"] = layers
        }
        let invalid: [(String, String, (inout [String: Any]) -> Void)] = [
            ("size as a string", "layers[0].cell.hiddenSize", { cell(&$0, "hiddenSize", "3") }),
            ("negative size", "-3 is not a size", { cell(&$0, "hiddenSize", -3) }),
            ("zero size", "layers[1].outputSize", { layer(&$0, 1, "outputSize", 0) }),
            ("huge size", "1000000000000 is not a size", { cell(&$0, "hiddenSize", 1_000_000_000_000) }),
            ("fractional size", "layers[0].cell.hiddenSize: 2.5 is not a size", { cell(&$0, "hiddenSize", 2.5) }),
            ("size beyond Int", "layers[0].cell.hiddenSize: 1e+30 is not a size", { cell(&$0, "hiddenSize", 1e30) }),
            ("rate rounding to 1", "layers[1].rate", { layer(&$0, 1, "type", "dropout"); layer(&$0, 1, "rate", 0.9999999999) }),
            ("missing field", "layers[0].returnSequences is missing", { layer(&$0, 0, "returnSequences", NSNull()) }),
            ("boolean as a number", "layers[1].usesBias", { layer(&$0, 1, "usesBias", 3) }),
            ("unknown activation", "unknown activation 'swish'", { layer(&$0, 1, "activation", "swish") }),
            ("size allowed, count not", "parameter scalars", { cell(&$0, "hiddenSize", 1 << 24) }),
            ("empty input shape", "inputShape", { $0["inputShape"] = [Int]() }),
            ("zero in the input shape", "inputShape", { $0["inputShape"] = [4, 0] }),
            ("negative input shape", "inputShape", { $0["inputShape"] = [-4, 2] }),
            ("no layers", "layers", { $0["layers"] = [Any]() }),
            ("layers not a list", "layers", { $0["layers"] = "lstm" }),
            ("shapes do not fit", "expects input [time, features]", { $0["inputShape"] = [4] }),
            ("not a model description", "format", { $0["format"] = "keras" }),
            ("no version", "formatVersion is missing", { $0["formatVersion"] = nil }),
        ]
        for (label, expected, edit) in invalid {
            let error = try loadErrorAfterEditing(directory, label) { object in
                edit(&object)
                // JSONSerialization cannot write a null member as absent; a nulled field stands for a removed one.
                if var layers = object["layers"] as? [[String: Any]] {
                    for index in layers.indices { layers[index] = layers[index].filter { !($0.value is NSNull) } }
                    object["layers"] = layers
                }
            }
            guard case let .invalidDescription(file, reason)? = error else {
                XCTFail("\(label): expected invalidDescription, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(file, descriptionURL(directory).path, label)
            XCTAssertTrue(reason.contains(expected), "\(label): \(reason)")
        }

        let dropout: (inout [String: Any]) -> Void = { object in
            var layers = object["layers"] as! [[String: Any]]
            layers.insert(["type": "dropout", "rate": 1.5], at: 1)
            object["layers"] = layers
        }
        guard case let .invalidDescription(_, reason)? = try loadErrorAfterEditing(directory, "rate", dropout) else {
            return XCTFail("a dropout rate of 1.5 should be invalid")
        }
        XCTAssertTrue(reason.contains("layers[1].rate: 1.5 is not a rate in [0, 1)"), reason)

        let negativeBound = try loadErrorAfterEditing(directory, "negative bound") { object in
            layer(&object, 0, "cell", ["kind": "indrnn", "hiddenSize": 3, "recurrentBound": -1])
        }
        guard case let .invalidDescription(_, reason)? = negativeBound else {
            return XCTFail("a negative recurrent bound should be invalid, got \(String(describing: negativeBound))")
        }
        XCTAssertTrue(reason.contains("layers[0].cell.recurrentBound"), reason)

        let mixedStack = try loadErrorAfterEditing(directory, "mixed stack") { object in
            layer(&object, 0, "cell", ["kind": "stacked", "cells": [["kind": "gru", "hiddenSize": 3, "resetAfter": true],
                                                                    ["kind": "peephole_lstm", "hiddenSize": 3]]])
        }
        guard case let .invalidDescription(_, reason)? = mixedStack else {
            return XCTFail("a stack of mixed kinds should be invalid, got \(String(describing: mixedStack))")
        }
        XCTAssertTrue(reason.contains("one kind"), reason)

        let path = descriptionURL(directory).path
        XCTAssertEqual(try loadErrorAfterEditing(directory, "unknown layer") { layer(&$0, 1, "type", "conv2d") },
                       .unknownLayerKind(file: path, kind: "conv2d", location: "layers[1].type"))
        XCTAssertEqual(try loadErrorAfterEditing(directory, "unknown cell") { cell(&$0, "kind", "transformer") },
                       .unknownLayerKind(file: path, kind: "transformer", location: "layers[0].cell.kind"))
        XCTAssertEqual(try loadErrorAfterEditing(directory, "newer version") { $0["formatVersion"] = 2 },
                       .unsupportedFormatVersion(file: path, version: 2, supported: 1))

        try Data("[1, 2]".utf8).write(to: descriptionURL(directory))
        guard case .invalidDescription? = loadError(directory, "a list") as? ModelArchiveError else {
            return XCTFail("a JSON list should be an invalid description")
        }
    }

    func testWeightsOfAnotherArchitectureThrowNamingTheTensor() throws {
        let (_, directory, _) = try savedSmallModel()
        // model.json edited to a wider LSTM: the weights no longer fit, and the first misfit is named.
        let widened = try temporaryDirectory()
        try FileManager.default.copyItem(at: weightsURL(directory), to: weightsURL(widened))
        var json = try String(contentsOf: descriptionURL(directory), encoding: .utf8)
        json = json.replacingOccurrences(of: "\"hiddenSize\": 3", with: "\"hiddenSize\": 5")
        try json.write(to: descriptionURL(widened), atomically: false, encoding: .utf8)
        XCTAssertEqual(loadError(widened, "wider LSTM") as? WeightError,
                       .shapeMismatch(name: "lstm/kernel (in \(weightsURL(widened).path))", expected: [2, 20], actual: [2, 12]))

        // Another model's weights file: refused by the recorded checksum.
        let other = Sequential([GRU(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 2)])
        try other.saveWeights(to: weightsURL(directory))
        guard case .weightsChecksumMismatch(let file, _, _)? = loadError(directory, "foreign weights") as? ModelArchiveError else {
            return XCTFail("foreign weights should fail the recorded checksum")
        }
        XCTAssertEqual(file, weightsURL(directory).path)
    }

    func testWeightsWithoutAnyChecksumAreRefused() throws {
        let (_, directory, _) = try savedSmallModel()
        let other = Sequential([GRU(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 2)])
        try other.saveWeights(to: weightsURL(directory))
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: descriptionURL(directory))) as? [String: Any])
        object["weightsCRC32"] = nil
        try JSONSerialization.data(withJSONObject: object).write(to: descriptionURL(directory))
        XCTAssertEqual(loadError(directory, "foreign weights") as? ModelArchiveError,
                       .missingChecksum(file: weightsURL(directory).path, manifest: descriptionURL(directory).path))
    }

    // MARK: Interrupted saves

    func testInterruptedSaveLeavesThePreviousModel() throws {
        let (model, directory, x) = try savedSmallModel()
        let expected = try model.predict(x)
        let previousFiles = try [Data(contentsOf: descriptionURL(directory)), Data(contentsOf: weightsURL(directory))]
        let retrained = Sequential([LSTM(hiddenSize: 3, inputShape: [4, 2]), Dense(outputSize: 2)])
        XCTAssertNotEqual(try retrained.predict(x).scalars, expected.scalars)

        // Interrupted with the new directory complete beside the old one, just before the swap.
        XCTAssertThrowsError(try retrained.save(to: directory) { temporary in
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporary.path).sorted(),
                           ["manifest.json", "model.json", "model.safetensors"])
            throw Interrupted()
        }) { XCTAssertTrue($0 is Interrupted, "\($0)") }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted(),
                       ["model.json", "model.safetensors"])
        XCTAssertEqual(try [Data(contentsOf: descriptionURL(directory)), Data(contentsOf: weightsURL(directory))], previousFiles)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.deletingLastPathComponent().path)
            .filter { $0.hasPrefix(".") }, [], "the temporary directory is removed")
        assertBitIdentical(try Sequential.load(from: directory).predict(x), expected, "after an interrupted save")

        try retrained.save(to: directory)
        assertBitIdentical(try Sequential.load(from: directory).predict(x), try retrained.predict(x), "after a full save")
    }

    func testSaveIntoAFilePathThrows() throws {
        let (model, directory, _) = try savedSmallModel()
        let target = weightsURL(directory).appendingPathComponent("inside")
        XCTAssertThrowsError(try model.save(to: target)) { error in
            guard let error = error as? AtomicWriteError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(error.path, target.path)
        }
    }

    // MARK: Unsupported layers

    func testCustomCellModelSaveThrowsUnsupportedLayer() throws {
        let model = Sequential([RNN(LeakyTanhCell(hiddenSize: 3), inputShape: [4, 2]), Dense(outputSize: 1)])
        let directory = try temporaryDirectory().appendingPathComponent("custom")
        XCTAssertThrowsError(try model.save(to: directory)) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "LeakyTanh"))
            XCTAssertTrue("\(error)".contains("LeakyTanh"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path), "nothing is written")
        XCTAssertThrowsError(try model.pyTorchStateDict()) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "LeakyTanh"))
        }
        let stacked = Sequential([RNN(StackedCells([LeakyTanhCell(hiddenSize: 2)]), inputShape: [4, 2])])
        XCTAssertThrowsError(try stacked.save(to: directory)) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "StackedLeakyTanh"))
        }
        // Keras names need no knowledge of the cell: its parameters' own names serve.
        XCTAssertEqual(try model.kerasWeights().keys.sorted(), ["dense/bias", "dense/kernel", "leaky_tanh/decay", "leaky_tanh/kernel"])
    }

    // MARK: PyTorch

    func testPyTorchLSTMImportMatchesTheFixture() throws {
        let fixture = try Fixture("lstm")
        let (batch, steps, features, hidden) = (try fixture.int("batch"), try fixture.int("steps"),
                                                try fixture.int("features"), try fixture.int("hidden"))
        var stateDict = try fixtureStateDict("lstm", prefix: "lstm.", suffix: "_l0")
        let linearWeight = Tensor(shape: [2, hidden], scalars: (0..<(2 * hidden)).map { Float($0) * 0.1 - 0.5 })
        let linearBias = Tensor([0.25, -0.75])
        stateDict["dense.weight"] = linearWeight
        stateDict["dense.bias"] = linearBias
        let url = try temporaryDirectory().appendingPathComponent("torch.safetensors")
        try SafeTensors.write(stateDict, to: url)

        let model = Sequential([LSTM(hiddenSize: hidden, inputShape: [steps, features], returnSequences: true),
                                Dense(outputSize: 2)])
        try model.loadPyTorchWeights(from: url)
        let input = try fixture.tensor("input")
        let expectedLSTM = try fixture.tensor("output")
        assertClose(model.layers[0](Node(input)).value, expectedLSTM, tolerance: 1e-4, "LSTM output")
        // The Linear layer: y = h Wᵀ + b, computed here from the fixture's LSTM output.
        let flat = expectedLSTM.reshaped(to: [batch * steps, hidden]).matmul(linearWeight.transposed()) + linearBias
        assertClose(try model.predict(input), flat.reshaped(to: [batch, steps, 2]), tolerance: 1e-4, "Linear output")

        let exported = try model.pyTorchStateDict()
        XCTAssertEqual(exported.keys.sorted(), stateDict.keys.sorted())
        for name in ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "dense.weight", "dense.bias"] {
            assertBitIdentical(exported[name]!, stateDict[name]!, name)
        }
        assertClose(exported["lstm.bias_ih_l0"]! + exported["lstm.bias_hh_l0"]!,
                    stateDict["lstm.bias_ih_l0"]! + stateDict["lstm.bias_hh_l0"]!, tolerance: 1e-6, "fused bias")
    }

    func testPyTorchGRUImportMatchesTheFixture() throws {
        let fixture = try Fixture("gru")
        let url = try temporaryDirectory().appendingPathComponent("gru.safetensors")
        try SafeTensors.write(try fixtureStateDict("gru", prefix: "gru.", suffix: "_l0"), to: url)
        let model = Sequential([GRU(hiddenSize: try fixture.int("hidden"),
                                    inputShape: [try fixture.int("steps"), try fixture.int("features")], returnSequences: true)])
        try model.loadPyTorchWeights(from: url)
        assertClose(try model.predict(try fixture.tensor("input")), try fixture.tensor("output"), tolerance: 1e-4, "GRU output")
    }

    func testPyTorchBidirectionalAndStackedImportsMatchTheFixtures() throws {
        let fixture = try Fixture("lstm_bidirectional")
        let hidden = try fixture.int("hidden")
        let bidirectional = Sequential([Bidirectional(LSTM(hiddenSize: hidden, returnSequences: true))],
                                       inputShape: [try fixture.int("steps"), try fixture.int("features")])
        try bidirectional.setPyTorchWeights(try fixtureStateDict("lstm_bidirectional", prefix: "bidirectional.", suffix: ""))
        assertClose(try bidirectional.predict(try fixture.tensor("input")), try fixture.tensor("output"),
                    tolerance: 1e-4, "bidirectional output")

        let stackedFixture = try Fixture("lstm_stacked2")
        let stackedHidden = try stackedFixture.int("hidden")
        let stacked = Sequential([RNN(StackedCells([LSTMCell(hiddenSize: stackedHidden), LSTMCell(hiddenSize: stackedHidden)]),
                                      returnSequences: true)],
                                 inputShape: [try stackedFixture.int("steps"), try stackedFixture.int("features")])
        try stacked.setPyTorchWeights(try fixtureStateDict("lstm_stacked2", prefix: "stacked_lstm.", suffix: ""))
        assertClose(try stacked.predict(try stackedFixture.tensor("input")), try stackedFixture.tensor("output"),
                    tolerance: 1e-4, "stacked output")
    }

    func testPyTorchImportErrorsNameTheTensorAndChangeNothing() throws {
        let model = Sequential([LSTM(hiddenSize: 6, inputShape: [5, 4]), Dense(outputSize: 2)])
        let before = model.weights
        var stateDict = try fixtureStateDict("lstm", prefix: "lstm.", suffix: "_l0")
        stateDict["dense.weight"] = Tensor.zeros([2, 6])

        XCTAssertThrowsError(try model.setPyTorchWeights(stateDict, source: "torch.safetensors")) { error in
            XCTAssertEqual(error as? WeightError, .missing(name: "dense.bias (in torch.safetensors)"))
        }
        stateDict["dense.bias"] = Tensor.zeros([3])
        XCTAssertThrowsError(try model.setPyTorchWeights(stateDict, source: "torch.safetensors")) { error in
            XCTAssertEqual(error as? WeightError,
                           .shapeMismatch(name: "dense.bias (in torch.safetensors)", expected: [2], actual: [3]))
        }
        stateDict["dense.bias"] = Tensor.zeros([2])
        stateDict["lstm.weight_ih_l1"] = Tensor.zeros([24, 6])
        XCTAssertThrowsError(try model.setPyTorchWeights(stateDict, source: "torch.safetensors")) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unexpectedTensors(file: "torch.safetensors", names: ["lstm.weight_ih_l1"]))
        }
        for (weight, original) in zip(model.weights, before) { assertBitIdentical(weight, original, "unchanged") }

        let custom = Sequential([RNN(LeakyTanhCell(hiddenSize: 3), inputShape: [4, 2])])
        XCTAssertThrowsError(try custom.setPyTorchWeights([:])) { error in
            XCTAssertEqual(error as? ModelArchiveError, .unsupportedLayer(typeName: "LeakyTanh"))
        }
    }

    // MARK: Keras

    func testKerasWeightsRoundTrip() throws {
        Initializers.resetSeedSequence(to: 8)
        func makeModel() -> Sequential {
            Sequential([Embedding(vocabularySize: 5, outputSize: 3, inputShape: [4]),
                        Bidirectional(LSTM(hiddenSize: 3, returnSequences: true)),
                        RNN(StackedCells([GRUCell(hiddenSize: 2), GRUCell(hiddenSize: 2)])),
                        Dense(outputSize: 1)])
        }
        let source = makeModel()
        let exported = try source.kerasWeights()
        XCTAssertEqual(exported.keys.sorted(), [
            "bidirectional/backward_lstm/bias", "bidirectional/backward_lstm/kernel", "bidirectional/backward_lstm/recurrent_kernel",
            "bidirectional/forward_lstm/bias", "bidirectional/forward_lstm/kernel", "bidirectional/forward_lstm/recurrent_kernel",
            "dense/bias", "dense/kernel", "embedding/embeddings",
            "stacked_gru/cell_0/bias", "stacked_gru/cell_0/kernel", "stacked_gru/cell_0/recurrent_kernel",
            "stacked_gru/cell_1/bias", "stacked_gru/cell_1/kernel", "stacked_gru/cell_1/recurrent_kernel",
        ])
        XCTAssertEqual(exported["bidirectional/forward_lstm/kernel"]?.shape, [3, 12])
        XCTAssertEqual(exported["stacked_gru/cell_1/bias"]?.shape, [2, 6])
        let url = try temporaryDirectory().appendingPathComponent("keras.safetensors")
        try SafeTensors.write(exported, to: url)

        let target = makeModel()
        let x = Tensor(shape: [2, 4], scalars: [0, 1, 4, 2, 3, 3, 0, 1])
        XCTAssertNotEqual(try target.predict(x).scalars, try source.predict(x).scalars)
        try target.loadKerasWeights(from: url)
        assertBitIdentical(try target.predict(x), try source.predict(x), "Keras round trip")

        var renamed = exported
        renamed["bidirectional/forward_lstm/kernel_0"] = renamed.removeValue(forKey: "bidirectional/forward_lstm/kernel")
        XCTAssertThrowsError(try target.setKerasWeights(renamed, source: "keras.safetensors")) { error in
            XCTAssertEqual(error as? WeightError, .missing(name: "bidirectional/forward_lstm/kernel (in keras.safetensors)"))
        }
    }
}
