import Foundation
@testable import Serialization
import Train
import XCTest

/// Options Unroll cannot honour throw naming their path in `config.json`; nothing is silently dropped.
final class KerasConfigurationTests: XCTestCase {
    /// Returns the error of reading `lstm_gru_dense.keras` with its configuration changed by `edit`.
    func error(editing edit: (inout JSON) throws -> Void) throws -> KerasError? {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("lstm_gru_dense.keras"))
        var config = try JSON.parse(try archive.contents(of: "config.json"))
        try edit(&config)
        let entries = try archive.entries.map { entry in
            (entry.name, entry.name == "config.json" ? Array(config.serialized().utf8) : try archive.contents(of: entry.name))
        }
        do {
            _ = try KerasFile.read(bytes: try ZipArchive.archive(entries), source: "m.keras")
            return nil
        } catch let error as KerasError {
            return error
        }
    }

    /// Sets `config.layers[index].config[key]` (index 0 is the InputLayer).
    static func set(_ config: inout JSON, layer index: Int, _ key: String, _ value: JSON) throws {
        guard case .object(var root) = config, case .object(var model)? = root["config"],
              case .array(var layers)? = model["layers"], case .object(var layer) = layers[index],
              case .object(var options)? = layer["config"] else { throw JSONError.missingField(path: "config.layers") }
        options[key] = value
        layer["config"] = .object(options)
        layers[index] = .object(layer)
        model["layers"] = .array(layers)
        root["config"] = .object(model)
        config = .object(root)
    }

    func testUnsupportedOptionsAreNamedByPath() throws {
        XCTAssertEqual(try error { try Self.set(&$0, layer: 1, "recurrent_activation", .string("hard_sigmoid")) },
                       .unsupportedOption(file: "m.keras/config.json", path: "config.layers[1].config.recurrent_activation",
                                          value: "\"hard_sigmoid\"", supported: "\"sigmoid\""))
        XCTAssertEqual(try error { try Self.set(&$0, layer: 3, "recurrent_dropout", .number(0.2)) },
                       .unsupportedOption(file: "m.keras/config.json", path: "config.layers[3].config.recurrent_dropout",
                                          value: "0.2", supported: "0"))
        XCTAssertEqual(try error { try Self.set(&$0, layer: 4, "activation", .string("gelu")) }?.description,
                       "m.keras/config.json: config.layers[4].config.activation = \"gelu\" is not supported (supported: "
                           + "\"linear\", \"tanh\", \"sigmoid\", \"relu\", \"softmax\")")
        XCTAssertEqual(try error { try Self.set(&$0, layer: 4, "kernel_regularizer", .string("l2")) },
                       .unsupportedOption(file: "m.keras/config.json", path: "config.layers[4].config.kernel_regularizer",
                                          value: "\"l2\"", supported: "null"))
        XCTAssertEqual(try error { try Self.set(&$0, layer: 1, "units", .number(2.5)) },
                       .invalidConfiguration(file: "m.keras/config.json",
                                             reason: "config.layers[1].config.units: 2.5 is not an integer in 1...16777216"))
        XCTAssertEqual(try error { try Self.set(&$0, layer: 0, "batch_shape", .array([.null, .null, .number(3)])) }?.description,
                       "m.keras/config.json: config.layers[0].config.batch_shape = [null,null,3] is not supported (supported: "
                           + "a fixed size for every axis but the batch (Unroll builds layers for one input shape))")
    }

    func testUnsupportedLayersAndModelsAreNamed() throws {
        let conv = try error { config in
            guard case .object(var root) = config, case .object(var model)? = root["config"],
                  case .array(var layers)? = model["layers"], case .object(var layer) = layers[2] else { return }
            layer["class_name"] = .string("Conv1D")
            layers[2] = .object(layer)
            model["layers"] = .array(layers)
            root["config"] = .object(model)
            config = .object(root)
        }
        XCTAssertEqual(conv, .unsupportedLayer(file: "m.keras/config.json", path: "config.layers[2]", className: "Conv1D"))
        let functional = try error { config in
            guard case .object(var root) = config else { return }
            root["class_name"] = .string("Functional")
            config = .object(root)
        }
        XCTAssertEqual(functional, .unsupportedLayer(file: "m.keras/config.json", path: "the model", className: "Functional model"))
    }

    func testFrozenLayersStayFrozenBothWays() throws {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("lstm_gru_dense.keras"))
        var config = try JSON.parse(try archive.contents(of: "config.json"))
        try Self.set(&config, layer: 1, "trainable", .bool(false))
        let entries = try archive.entries.map { entry in
            (entry.name, entry.name == "config.json" ? Array(config.serialized().utf8) : try archive.contents(of: entry.name))
        }
        let contents = try KerasFile.read(bytes: try ZipArchive.archive(entries), source: "m.keras")
        XCTAssertEqual(contents.layers.map { $0.parameters.map(\.isTrainable) },
                       [[false, false, false], [], [true, true, true], [true, true]])
        let written = try KerasFile.archive(name: "m", inputShape: contents.inputShape, layers: contents.layers,
                                            names: LayerNames.names(of: contents.layers))
        let reread = try KerasFile.read(bytes: written, source: "written.keras")
        XCTAssertEqual(reread.layers.map { $0.parameters.map(\.isTrainable) },
                       [[false, false, false], [], [true, true, true], [true, true]])
    }

    func testAHugeLayerIsRefusedBeforeAllocating() throws {
        XCTAssertEqual(try error { try Self.set(&$0, layer: 1, "units", .number(16_000_000)) }?.description,
                       "m.keras/config.json: invalid Keras configuration: the layers need more parameters than "
                           + "model.weights.h5 (24792 bytes) can hold")
    }
}

extension KerasConfigurationTests {
    func testALossWithoutAnUnrollTwinNeedsCompileFalse() throws {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("lstm_gru_dense.keras"))
        var config = try JSON.parse(try archive.contents(of: "config.json"))
        guard case .object(var root) = config, case .object(var compile)? = root["compile_config"] else {
            return XCTFail("no compile_config")
        }
        compile["loss"] = .string("huber")
        root["compile_config"] = .object(compile)
        config = .object(root)
        let entries = try archive.entries.map { entry in
            (entry.name, entry.name == "config.json" ? Array(config.serialized().utf8) : try archive.contents(of: entry.name))
        }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-huber-\(UUID().uuidString).keras")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(try ZipArchive.archive(entries)).write(to: url)
        XCTAssertThrowsError(try Sequential.load(keras: url)) { error in
            guard case .unsupportedOption(_, "compile_config.loss", "\"huber\"", _)? = error as? KerasError else {
                return XCTFail("\(error)")
            }
        }
        XCTAssertNil(try Sequential.load(url, compile: false).loss)
    }
}
