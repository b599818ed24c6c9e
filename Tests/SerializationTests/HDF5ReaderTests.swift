import XCTest
@testable import Serialization

final class HDF5ReaderTests: XCTestCase {
    func testReadsKerasWeightsFromSuperblockZeroAndLatestLayouts() throws {
        for name in ["lstm_gru_dense.weights.h5", "lstm_gru_dense.latest.weights.h5"] {
            let file = try HDF5File(bytes: try KerasFixtures.bytes(name), source: name)
            XCTAssertEqual(try file.memberNames(ofGroupAt: ""), ["layers", "optimizer", "vars"], name)
            XCTAssertEqual(try file.memberNames(ofGroupAt: "layers"), ["dense", "dropout", "gru", "lstm"], name)
            XCTAssertEqual(try file.memberNames(ofGroupAt: "layers/lstm/cell/vars"), ["0", "1", "2"], name)
            let kernel = try file.dataset(at: "layers/lstm/cell/vars/0")
            XCTAssertEqual(kernel.shape, [3, 16], name)
            let bias = try file.dataset(at: "layers/gru/cell/vars/2")
            XCTAssertEqual(bias.shape, [2, 9], name)
            let iterations = try file.dataset(at: "optimizer/vars/0")
            XCTAssertEqual(iterations.shape, [], name)
            XCTAssertEqual(iterations.values, [0], name)
            XCTAssertEqual(try file.dataset(at: "optimizer/vars/1").values, [Double(Float(0.002))], name)
            XCTAssertFalse(try file.contains("layers/lstm/vars/0"))
            XCTAssertThrowsError(try file.dataset(at: "layers/nothing")) { error in
                XCTAssertEqual(error as? HDF5Error, .notFound(file: name, path: "layers/nothing"))
            }
        }
    }
}

final class HDF5WriterTests: XCTestCase {
    func testWrittenFilesReadBack() throws {
        let names = (0..<70).map { "m\($0)" }
        let bytes = try HDF5File.encode([
            ("layers", .group([("lstm", .group([("vars", .group([
                ("0", .dataset(shape: [2, 3], values: [1, -2, 3.5, 0, .pi, -0])),
                ("1", .dataset(shape: [3], values: [7, 8, 9])),
            ]))]))])),
            ("wide", .group(names.map { ($0, .group([])) })),
            ("empty", .group([])),
            ("iterations", .integerDataset(shape: [], values: [-5])),
        ])
        let file = try HDF5File(bytes: bytes, source: "written.h5")
        XCTAssertEqual(try file.memberNames(ofGroupAt: ""), ["empty", "iterations", "layers", "wide"])
        XCTAssertEqual(try file.dataset(at: "iterations"), HDF5Dataset(shape: [], values: [-5]))
        XCTAssertEqual(try file.memberNames(ofGroupAt: "wide"), names.sorted())
        XCTAssertEqual(try file.memberNames(ofGroupAt: "empty"), [])
        XCTAssertEqual(try file.dataset(at: "layers/lstm/vars/0"),
                       HDF5Dataset(shape: [2, 3], values: [1, -2, 3.5, 0, Double(Float.pi), 0]))
        XCTAssertEqual(try file.dataset(at: "layers/lstm/vars/1").values, [7, 8, 9])
    }

    func testRefusesWhatItCannotWrite() {
        XCTAssertThrowsError(try HDF5File.encode([("a/b", .group([]))]))
        XCTAssertThrowsError(try HDF5File.encode([("a", .dataset(shape: [2], values: [1]))]))
        XCTAssertThrowsError(try HDF5File.encode([("a", .group((0...256).map { ("\($0)", .group([])) }))]))
    }
}

final class HDF5ChecksumTests: XCTestCase {
    func testLookup3KnownAnswers() {
        // From the self-test of Bob Jenkins' lookup3.c.
        XCTAssertEqual(Lookup3.hash([][...]), 0xDEAD_BEEF)
        XCTAssertEqual(Lookup3.hash(Array("Four score and seven years ago".utf8)[...]), 0x1777_0551)
    }

    func testACorruptedVersion2HeaderFailsItsChecksum() throws {
        let name = "lstm_gru_dense.latest.weights.h5"
        var bytes = try KerasFixtures.bytes(name)
        let header = try XCTUnwrap((0..<bytes.count - 4).first { Array(bytes[$0..<$0 + 4]) == Array("OHDR".utf8) })
        bytes[header + 7] ^= 0x10
        XCTAssertThrowsError(try HDF5File(bytes: bytes, source: name).memberNames(ofGroupAt: "")) { error in
            guard case .invalid(_, _, let reason)? = error as? HDF5Error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.hasPrefix("the object header of '/' is corrupted (checksum "), reason)
        }
    }
}
