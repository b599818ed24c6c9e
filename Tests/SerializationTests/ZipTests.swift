import XCTest
@testable import Serialization

final class ZipTests: XCTestCase {
    func testReadsTheEntriesKerasWrites() throws {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("lstm_gru_dense.keras"), source: "lstm_gru_dense.keras")
        XCTAssertEqual(archive.entries.map(\.name), ["metadata.json", "config.json", "model.weights.h5"])
        let metadata = try JSON.parse(try archive.contents(of: "metadata.json"))
        XCTAssertEqual(try metadata.field("keras_version").string(), "3.15.1")
        XCTAssertEqual(Array(try archive.contents(of: "model.weights.h5").prefix(8)),
                       [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertThrowsError(try archive.contents(of: "assets")) { error in
            XCTAssertEqual(error as? ZipError, .missingEntry(archive: "lstm_gru_dense.keras", name: "assets"))
        }
    }

    func testReadsDataDescriptorsAndZip64LocalSizes() throws {
        let archive = try ZipArchive(bytes: try KerasFixtures.bytes("descriptors.zip"))
        XCTAssertEqual(archive.entries.map(\.name), ["a.txt", "b/c.json"])
        XCTAssertEqual(String(decoding: try archive.contents(of: "a.txt"), as: UTF8.self), "stored with a data descriptor\n")
        XCTAssertEqual(try JSON.parse(try archive.contents(of: "b/c.json")), .object(JSONObject(["b": .array([.number(1), .number(2)])])))
    }

    func testCompressedEntriesAreRefusedByName() throws {
        XCTAssertThrowsError(try ZipArchive(bytes: try KerasFixtures.bytes("deflated.zip"))) { error in
            XCTAssertEqual(error as? ZipError, .unsupported("entry 'a.txt' compressed with method 8 (deflate), which"))
        }
    }

    func testWrittenArchivesReadBackAndAreReproducible() throws {
        let entries: [(name: String, contents: [UInt8])] = [("config.json", Array("{}".utf8)), ("é/empty", []),
                                                            ("w", (0..<1000).map { UInt8($0 % 251) })]
        let bytes = try ZipArchive.archive(entries)
        XCTAssertEqual(bytes, try ZipArchive.archive(entries))
        let archive = try ZipArchive(bytes: bytes)
        XCTAssertEqual(archive.entries.map(\.name), entries.map(\.name))
        for (name, contents) in entries { XCTAssertEqual(try archive.contents(of: name), contents) }
    }

    func testCorruptedBytesFailTheChecksum() throws {
        var bytes = try ZipArchive.archive([("a", Array("hello".utf8))])
        bytes[31] ^= 0x01          // the first data byte: 30-byte local header + 1-byte name
        let archive = try ZipArchive(bytes: bytes, source: "x.zip")
        XCTAssertThrowsError(try archive.contents(of: "a")) { error in
            guard case .checksumMismatch(_, "a", _, _)? = error as? ZipError else { return XCTFail("\(error)") }
        }
    }

    func testHostileDirectoriesThrowTypedErrors() throws {
        XCTAssertThrowsError(try ZipArchive(bytes: Array("not a zip".utf8), source: "t")) { error in
            XCTAssertEqual(error as? ZipError, .notAnArchive(archive: "t"))
        }
        var bytes = try ZipArchive.archive([("a", [1, 2, 3])])
        let end = bytes.count - 22
        bytes.storeLittleEndian(UInt16(0xFFF0), at: end + 8)   // entry counts far beyond the directory's size
        bytes.storeLittleEndian(UInt16(0xFFF0), at: end + 10)
        XCTAssertThrowsError(try ZipArchive(bytes: bytes, source: "t")) { error in
            XCTAssertEqual(error as? ZipError, .invalidRecord(
                archive: "t", offset: end, reason: "65520 entries cannot fit in a central directory of 47 bytes"))
        }
    }
}
