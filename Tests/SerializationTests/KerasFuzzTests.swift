import Foundation
import Layers
@testable import Serialization
import Train
import XCTest

/// Hostile files are data: truncated and corrupted `.keras` and `.weights.h5` files load or throw a typed error
/// (``ZipError``, ``HDF5Error``, ``KerasError``), never trap, hang or allocate without bound.
final class KerasFuzzTests: XCTestCase {
    /// A seeded SplitMix64, so every run tries the same mutants.
    struct Generator {
        var state: UInt64
        mutating func next(below bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    /// Truncations at evenly spaced lengths, then single-bit flips at random positions.
    static func mutants(of bytes: [UInt8], truncations: Int, flips: Int, seed: UInt64) -> [[UInt8]] {
        var result = (0..<truncations).map { Array(bytes.prefix($0 * bytes.count / truncations)) }
        var generator = Generator(state: seed)
        for _ in 0..<flips {
            var mutant = bytes
            let position = generator.next(below: bytes.count)
            mutant[position] ^= UInt8(1 << generator.next(below: 8))
            result.append(mutant)
        }
        return result
    }

    /// Runs `load` on every mutant; returns how many loaded and how many threw a typed error.
    func outcomes(_ mutants: [[UInt8]], _ load: ([UInt8]) throws -> Void) -> (loaded: Int, rejected: Int) {
        var loaded = 0, rejected = 0
        for mutant in mutants {
            do {
                try load(mutant)
                loaded += 1
            } catch is ZipError, is HDF5Error, is KerasError {
                rejected += 1
            } catch {
                XCTFail("an untyped error for a mutant of \(mutant.count) bytes: \(error)")
            }
        }
        return (loaded, rejected)
    }

    static func layers() throws -> [any Layer] {
        let layers: [any Layer] = [LSTM(hiddenSize: 4, returnSequences: true), Dropout(rate: 0.25), GRU(hiddenSize: 3),
                                   Dense(outputSize: 2, activation: .tanh)]
        var shape = [5, 3]
        for layer in layers {
            try layer.build(inputShape: shape)
            shape = try layer.outputShape(forInputShape: shape)
        }
        return layers
    }

    func testWeightsFileMutants_2000() throws {
        let layers = try Self.layers()
        var total = 0
        for (index, name) in ["lstm_gru_dense.weights.h5", "lstm_gru_dense.latest.weights.h5"].enumerated() {
            let mutants = Self.mutants(of: try KerasFixtures.bytes(name), truncations: 250, flips: 750, seed: UInt64(index))
            let (loaded, rejected) = outcomes(mutants) {
                try KerasFile.loadWeights(h5: $0, source: name, into: layers, names: LayerNames.names(of: layers))
            }
            XCTAssertEqual(loaded + rejected, mutants.count)
            // Every truncation loses a structure or a weight, and some flips hit structure: both kinds occur.
            XCTAssertGreaterThanOrEqual(rejected, 250, name)
            XCTAssertGreaterThan(loaded, 0, name)
            total += mutants.count
        }
        XCTAssertEqual(total, 2000)
    }

    func testKerasArchiveMutants_1500() throws {
        let original = try KerasFixtures.bytes("lstm_gru_dense.keras")
        let archive = try ZipArchive(bytes: original)
        let entries = try archive.entries.map { ($0.name, try archive.contents(of: $0.name)) }
        var mutants = Self.mutants(of: original, truncations: 250, flips: 250, seed: 10)
        // Corruption inside the entries, re-zipped with fresh CRC-32s so it reaches the JSON and HDF5 readers.
        for (index, (name, contents)) in entries.enumerated() where name != KerasFile.metadataEntry {
            for mutant in Self.mutants(of: contents, truncations: 125, flips: 375, seed: UInt64(20 + index)) {
                mutants.append(try ZipArchive.archive(entries.map { $0.0 == name ? ($0.0, mutant) : $0 }))
            }
        }
        let (loaded, rejected) = outcomes(mutants) { _ = try KerasFile.read(bytes: $0, source: "mutant.keras") }
        XCTAssertEqual(mutants.count, 1500)
        XCTAssertEqual(loaded + rejected, 1500)
        XCTAssertGreaterThanOrEqual(rejected, 500)
        XCTAssertGreaterThan(loaded, 0)
    }

    func testFunctionalConfigurationMutants_600() throws {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("functional_shared.keras"))
        let entries = try archive.entries.map { ($0.name, try archive.contents(of: $0.name)) }
        let config = try archive.contents(of: "config.json")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-fuzz-\(UUID().uuidString).keras")
        defer { try? FileManager.default.removeItem(at: url) }
        var loaded = 0, rejected = 0
        for mutant in Self.mutants(of: config, truncations: 150, flips: 450, seed: 30) {
            try Data(try ZipArchive.archive(entries.map { $0.0 == "config.json" ? ($0.0, mutant) : $0 })).write(to: url)
            do {
                _ = try Model.load(keras: url)
                loaded += 1
            } catch is ZipError, is HDF5Error, is KerasError, is ModelError {
                rejected += 1
            } catch {
                XCTFail("an untyped error for a mutant of \(mutant.count) bytes: \(error)")
            }
        }
        XCTAssertEqual(loaded + rejected, 600)
        XCTAssertGreaterThanOrEqual(rejected, 150)
        XCTAssertGreaterThan(loaded, 0)
    }
}
