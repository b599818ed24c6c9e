import Foundation
import Graph
@testable import Serialization
import XCTest

/// The safetensors reader and writer, the CRC-32 that guards its files, and the atomic file writer.
final class SafeTensorsTests: XCTestCase {
    // MARK: Helpers

    /// Builds a safetensors file from a hand-written header and raw data bytes.
    private func file(header: String, data: [UInt8]) -> Data {
        var bytes = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: data)
        return bytes
    }

    /// The header length stored in the first 8 bytes.
    private func headerLength(_ data: Data) -> Int {
        Int(data.prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
    }

    /// Asserts equal names, shapes and bit patterns (so NaN payloads and the sign of zero count).
    private func assertBitIdentical(_ actual: [String: Tensor], _ expected: [String: Tensor], _ label: String = "",
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.keys.sorted(), expected.keys.sorted(), label, file: file, line: line)
        for (name, tensor) in expected {
            guard let other = actual[name] else { continue }
            XCTAssertEqual(other.shape, tensor.shape, "\(label) \(name)", file: file, line: line)
            XCTAssertEqual(other.scalars.map(\.bitPattern), tensor.scalars.map(\.bitPattern), "\(label) \(name)",
                           file: file, line: line)
        }
    }

    private func assertThrows(_ data: Data, _ label: String, file: StaticString = #filePath, line: UInt = #line,
                              _ check: (SafeTensorsError) -> Bool = { _ in true }) {
        do {
            _ = try SafeTensors.decode(data, source: "test.safetensors")
            XCTFail("\(label): decoded without error", file: file, line: line)
        } catch let error as SafeTensorsError {
            XCTAssertTrue(check(error), "\(label): unexpected error \(error)", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix("test.safetensors: "), "\(error)", file: file, line: line)
        } catch {
            XCTFail("\(label): unexpected error type \(error)", file: file, line: line)
        }
    }

    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("SafeTensorsTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return directory
    }

    private var sampleTensors: [String: Tensor] {
        [
            "scalar": Tensor(scalar: -0.0),
            "empty": Tensor(shape: [0], scalars: []),
            "special": Tensor([.infinity, -.infinity, Float(bitPattern: 0x7FC0_1234), .leastNonzeroMagnitude, 3.5]),
            "matrix": Tensor([[1, 2, 3], [-4, 5e-30, 6e30]]),
            "cube": Tensor(shape: [2, 1, 3], scalars: [0.1, 0.2, 0.3, -0.4, -0.5, -0.6]),
        ]
    }

    // MARK: CRC-32

    func testCRC32KnownAnswers() {
        XCTAssertEqual(CRC32.checksum(of: Data("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum(of: Data()), 0)
        XCTAssertEqual(CRC32.checksum(of: Data("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        var pieces = CRC32()
        pieces.update(with: Array("1234".utf8))
        pieces.update(with: Data("56789".utf8))
        XCTAssertEqual(pieces.checksum, 0xCBF4_3926)
    }

    // MARK: Encoding and decoding

    func testRoundTripIsBitExact() throws {
        let metadata = ["note": "héllo \"quoted\"\n\\ \u{01}", "epoch": "3"]
        let decoded = try SafeTensors.decode(SafeTensors.encode(sampleTensors, metadata: metadata))
        assertBitIdentical(decoded.tensors, sampleTensors)
        XCTAssertEqual(decoded.metadata, metadata)
    }

    func testEncodedBytesMatchTheReferenceLayout() {
        let encoded = SafeTensors.encode(["a": Tensor([1, -2])])
        // The checksum is zlib.crc32(b"a\0F32\x002\0" + the 8 data bytes), computed in Python.
        let header = #"{"__metadata__":{"unroll.crc32":"4aeb6944"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        XCTAssertEqual(header.utf8.count, 97)
        let expected = [104, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + Array(repeating: UInt8(ascii: " "), count: 7)
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0]
        XCTAssertEqual(Array(encoded), expected)
    }

    func testEncodingSortsTensorsAndMetadataByName() throws {
        let encoded = SafeTensors.encode(["b": Tensor([2]), "a": Tensor([1]), "B": Tensor([3])],
                                         metadata: ["z": "1", "y": "2"])
        let headerLength = headerLength(encoded)
        let header = String(decoding: encoded[8..<8 + headerLength], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix(#"{"__metadata__":{"unroll.crc32":""#), header)
        XCTAssertTrue(header.contains(#""y":"2","z":"1"}"#), header)
        XCTAssertTrue(header.contains(#""B":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#),
                      header)
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(Array(encoded.suffix(12)), littleEndianBytes([Float(3), 1, 2].map(\.bitPattern)))
    }

    func testHandMadeFileDecodes() throws {
        let bytes = file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
                         data: [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        let decoded = try SafeTensors.decode(bytes)
        XCTAssertEqual(decoded.tensors["a"], Tensor([1, -2]))
        XCTAssertEqual(decoded.tensors.count, 1)
        XCTAssertEqual(decoded.metadata, [:])
    }

    func testDecodesOtherDtypes() throws {
        let f64 = littleEndianBytes([1.5, -0.1, 1e300].map { (value: Double) in value.bitPattern })
        // Half: 1, -2, 65504 (largest), 2^-24 (smallest subnormal), infinity, 0x3555 = 0.333251953125.
        let f16 = littleEndianBytes([UInt16(0x3C00), 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x3555])
        // bfloat16: 1, -3, 3.140625.
        let bf16 = littleEndianBytes([UInt16(0x3F80), 0xC040, 0x4049])
        let i64 = littleEndianBytes([Int64(-3), 1 << 40])
        let i32 = littleEndianBytes([Int32(7), -2_000_000])
        let u8: [UInt8] = [0, 255]
        let bool: [UInt8] = [1, 0]
        var data: [UInt8] = []
        var entries: [String] = []
        for (name, dtype, shape, bytes) in [("d", "F64", "[3]", f64), ("h", "F16", "[2,3]", f16),
                                            ("b", "BF16", "[3]", bf16), ("l", "I64", "[2]", i64),
                                            ("i", "I32", "[2,1]", i32), ("u", "U8", "[2]", u8),
                                            ("t", "BOOL", "[2]", bool)] {
            entries.append(#""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":[\#(data.count),\#(data.count + bytes.count)]}"#)
            data += bytes
        }
        let decoded = try SafeTensors.decode(file(header: "{" + entries.joined(separator: ",") + "}", data: data))
        XCTAssertEqual(decoded.tensors["d"], Tensor([1.5, Float(-0.1), .infinity]))
        XCTAssertEqual(decoded.tensors["h"], Tensor([[1, -2, 65504], [0x1p-24, .infinity, 0.333251953125]]))
        XCTAssertEqual(decoded.tensors["b"], Tensor([1, -3, 3.140625]))
        XCTAssertEqual(decoded.tensors["l"], Tensor([-3, 1_099_511_627_776]))
        XCTAssertEqual(decoded.tensors["i"], Tensor([[7], [-2_000_000]]))
        XCTAssertEqual(decoded.tensors["u"], Tensor([0, 255]))
        XCTAssertEqual(decoded.tensors["t"], Tensor([1, 0]))
    }

    func testHalfPrecisionSpecialValues() {
        XCTAssertEqual(SafeTensors.floatFromHalf(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(SafeTensors.floatFromHalf(0x03FF), 1023 * 0x1p-24)
        XCTAssertEqual(SafeTensors.floatFromHalf(0x0400), 0x1p-14)
        XCTAssertEqual(SafeTensors.floatFromHalf(0xFC00), -.infinity)
        XCTAssertTrue(SafeTensors.floatFromHalf(0x7E00).isNaN)
    }

    // MARK: Damaged and hostile input

    func testTruncationAtEveryOffsetThrows() {
        let encoded = SafeTensors.encode(["w": Tensor([[1, 2], [3, 4]]), "b": Tensor([5]), "e": Tensor(shape: [0], scalars: [])],
                                         metadata: ["note": "hi"])
        for length in 0..<encoded.count {
            assertThrows(encoded.prefix(length), "prefix of \(length) bytes") { error in
                switch error {
                case .truncated, .invalidHeader: true
                default: false
                }
            }
        }
    }

    func testByteFlipsAreDetectedOrLeaveTensorsIntact() throws {
        let original: [String: Tensor] = ["w": Tensor([[1, 2], [3, 4]]), "b": Tensor([5]),
                                          "e": Tensor(shape: [0], scalars: [])]
        let encoded = SafeTensors.encode(original, metadata: ["note": "hi"])
        let headerEnd = 8 + headerLength(encoded)
        // A flip may go unnoticed only inside a user metadata key or value, or the checksum's key (which then
        // stops being recognized): nothing that describes a tensor.
        let header = Array(encoded[8..<headerEnd])
        var harmless = Set<Int>()
        for text in ["note", "hi", SafeTensors.checksumKey] {
            let needle = Array("\"\(text)\"".utf8)
            let start = try XCTUnwrap((0...header.count - needle.count).first { header[$0..<$0 + needle.count].elementsEqual(needle) })
            harmless.formUnion((8 + start + 1)..<(8 + start + needle.count - 1))
        }
        var unnoticed = 0
        for offset in 0..<encoded.count {
            for mask: UInt8 in [0xFF, 0x01] {
                var damaged = encoded
                damaged[offset] ^= mask
                guard let decoded = try? SafeTensors.decode(damaged) else { continue }
                unnoticed += 1
                XCTAssertTrue(harmless.contains(offset), "flip \(mask) at \(offset) of \(encoded.count) went unnoticed")
                assertBitIdentical(decoded.tensors, original, "flip \(mask) at \(offset)")
            }
        }
        // 'n', 'o', 't', 'e', 'h', 'i' and the checksum key's letters all stay printable under xor 1.
        XCTAssertGreaterThan(unnoticed, 0)
        XCTAssertLessThanOrEqual(unnoticed, 2 * harmless.count)
    }

    func testDataFlipIsReportedAsChecksumMismatch() {
        var encoded = SafeTensors.encode(["a": Tensor([1, -2])])
        encoded[encoded.count - 1] ^= 0x01
        assertThrows(encoded, "flipped sign byte") { error in
            guard case let .checksumMismatch(_, stored, computed) = error else { return false }
            return stored == "4aeb6944" && computed.count == 8 && computed != stored
        }
    }

    func testAbsurdHeaderLengthThrows() {
        let data: [UInt8] = [0, 0, 0x80, 0x3F]
        for length in [UInt64.max, 1 << 62, 1 << 40, 13] {
            var bytes = Data()
            withUnsafeBytes(of: length.littleEndian) { bytes.append(contentsOf: $0) }
            bytes.append(contentsOf: Array("{}".utf8) + data)
            assertThrows(bytes, "header length \(length)") { error in
                if case let .truncated(_, expected, actual) = error { return actual == 14 && expected > 14 }
                return false
            }
        }
    }

    func testOffsetsMustTileTheDataSection() {
        let twelve = [UInt8](repeating: 0, count: 12)
        let cases: [(String, String, [UInt8])] = [
            ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, twelve),
            ("gap", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, twelve),
            ("not from zero", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, twelve),
            ("trailing bytes", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, twelve),
            ("empty tensor past the end", #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"e":{"dtype":"F32","shape":[0],"data_offsets":[40,40]}}"#, twelve),
        ]
        for (label, header, data) in cases {
            assertThrows(file(header: header, data: data), label) { error in
                if case .invalidLayout = error { return true }
                return false
            }
        }
        let pastTheEnd = #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        let headerEnd = 8 + pastTheEnd.utf8.count
        assertThrows(file(header: pastTheEnd, data: twelve), "past the end") {
            $0 == .truncated(file: "test.safetensors", expected: headerEnd + 16, actual: headerEnd + 12)
        }
    }

    func testMalformedHeadersThrowNamedErrors() {
        let eight = [UInt8](repeating: 0, count: 8)
        func entry(_ fields: String) -> String { "{\"a\":{\(fields)}}" }
        let invalid: [(String, String)] = [
            ("not JSON", "{\"a\":"),
            ("array at the top", "[1,2]"),
            ("missing dtype", entry(#""shape":[2],"data_offsets":[0,8]"#)),
            ("negative dimension", entry(#""dtype":"F32","shape":[-2],"data_offsets":[0,8]"#)),
            ("fractional dimension", entry(#""dtype":"F32","shape":[2.0],"data_offsets":[0,8]"#)),
            ("exponent offset", entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8e0]"#)),
            ("three offsets", entry(#""dtype":"F32","shape":[2],"data_offsets":[0,4,8]"#)),
            ("reversed offsets", entry(#""dtype":"F32","shape":[2],"data_offsets":[8,0]"#)),
            ("repeated field", entry(#""dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]"#)),
            ("overflowing shape", entry(#""dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]"#)),
            ("huge number", entry(#""dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]"#)),
            ("metadata not strings", #"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
            ("trailing garbage", entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#) + "x"),
            ("lone surrogate", #"{"\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#),
            ("deep nesting", "{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"),
        ]
        for (label, header) in invalid {
            assertThrows(file(header: header, data: eight), label) { error in
                if case .invalidHeader = error { return true }
                return false
            }
        }
        var notUTF8 = file(header: entry(#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#), data: eight)
        notUTF8[9] = 0xC3
        assertThrows(notUTF8, "invalid UTF-8") { $0 == .invalidHeader(file: "test.safetensors", reason: "the header is not valid UTF-8") }
        assertThrows(file(header: "{\"a\":", data: []), "position") {
            $0 == .invalidHeader(file: "test.safetensors", reason: "line 1, column 6: unexpected end of the text, expected a value")
        }
        assertThrows(file(header: entry(#""dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]"#), data: eight), "dtype") {
            $0 == .unsupportedDtype(file: "test.safetensors", name: "a", dtype: "F8_E4M3")
        }
        assertThrows(file(header: entry(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#), data: eight), "size") {
            $0 == .shapeMismatch(file: "test.safetensors", name: "a", shape: [3], dtype: "F32",
                                 expectedByteCount: 12, actualByteCount: 8)
        }
        let twice = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        assertThrows(file(header: twice, data: eight), "duplicate") { $0 == .duplicateName(file: "test.safetensors", name: "a") }
    }

    func testHeaderIntegersAreExactAndRepetitionsSayWhatRepeats() {
        let eight = [UInt8](repeating: 0, count: 8)
        // 2^53 + 1 has no Double: read through one, the byte count would come out as 2^53.
        assertThrows(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9007199254740993]}}"#, data: eight), "exact") {
            $0 == .shapeMismatch(file: "test.safetensors", name: "a", shape: [1], dtype: "F32",
                                 expectedByteCount: 4, actualByteCount: 9_007_199_254_740_993)
        }
        let repeats: [(String, String)] = [
            (#"{"a":{"dtype":"F32","shape":[2],"shape":[2],"data_offsets":[0,8]}}"#,
             "line 1, column 33: tensor 'a': field 'shape' appears twice"),
            (#"{"__metadata__":{"k":"x","k":"y"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
             "line 1, column 26: metadata key 'k' appears twice"),
            (#"{"__metadata__":{},"__metadata__":{},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
             "line 1, column 20: \"__metadata__\" appears twice"),
        ]
        for (header, reason) in repeats {
            assertThrows(file(header: header, data: eight), reason) { $0 == .invalidHeader(file: "test.safetensors", reason: reason) }
        }
    }

    func testAcceptsWhitespaceEscapesAndUnknownFields() throws {
        let header = " {\n \"w\\u00e9\\n\" : { \"dtype\" : \"F32\", \"shape\" : [ ] , \"data_offsets\" : [ 0 , 4 ], "
            + "\"extra\": [true, null, -1.5e3] } , \"__metadata__\": {\"k\": \"\\ud83d\\ude00\"} }   "
        let decoded = try SafeTensors.decode(file(header: header, data: [0, 0, 0x40, 0x40]))
        XCTAssertEqual(decoded.tensors["wé\n"], Tensor(scalar: 3))
        XCTAssertEqual(decoded.metadata, ["k": "😀"])
    }

    // MARK: Files

    func testWriteAndReadFile() throws {
        let url = try temporaryDirectory().appendingPathComponent("model.safetensors")
        try SafeTensors.write(sampleTensors, metadata: ["epoch": "7"], to: url)
        let loaded = try SafeTensors.read(from: url)
        assertBitIdentical(loaded.tensors, sampleTensors)
        XCTAssertEqual(loaded.metadata, ["epoch": "7"])

        var bytes = try Data(contentsOf: url)
        bytes[bytes.count - 2] ^= 0x10
        try bytes.write(to: url)
        XCTAssertThrowsError(try SafeTensors.read(from: url)) { error in
            guard case let .checksumMismatch(file, _, _)? = error as? SafeTensorsError else {
                return XCTFail("unexpected \(error)")
            }
            XCTAssertEqual(file, url.path)
        }
        let missing = url.deletingLastPathComponent().appendingPathComponent("missing.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(from: missing)) { error in
            guard case let .unreadable(file, _)? = error as? SafeTensorsError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(file, missing.path)
        }
    }

    func testAtomicWriteReplacesExistingFile() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("weights.bin")
        try Data("old contents, longer than the new".utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
        try writeAtomically(Data("new".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("new".utf8))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["weights.bin"])
        let permissions = try FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions] as? Int
        XCTAssertEqual(permissions, 0o600)
    }

    func testInterruptedAtomicWriteLeavesPreviousFile() throws {
        struct Interrupted: Error {}
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("weights.safetensors")
        let previous = SafeTensors.encode(["a": Tensor([1, 2])])
        try previous.write(to: url)
        let replacement = SafeTensors.encode(["a": Tensor([3, 4, 5])])
        var temporaryPath: String?
        XCTAssertThrowsError(try writeAtomically(replacement, to: url) { temporary in
            temporaryPath = temporary.path
            XCTAssertEqual(temporary.deletingLastPathComponent().path, directory.path)
            XCTAssertTrue(temporary.lastPathComponent.hasPrefix(".weights.safetensors.tmp-"), temporary.lastPathComponent)
            XCTAssertEqual(try Data(contentsOf: temporary), replacement)
            throw Interrupted()
        }) { error in
            XCTAssertTrue(error is Interrupted, "\(error)")
        }
        XCTAssertNotNil(temporaryPath)
        XCTAssertEqual(try Data(contentsOf: url), previous)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["weights.safetensors"])
        XCTAssertEqual(try SafeTensors.read(from: url).tensors["a"], Tensor([1, 2]))
    }

    func testAtomicWriteIntoMissingDirectoryThrows() throws {
        let url = try temporaryDirectory().appendingPathComponent("absent/weights.bin")
        XCTAssertThrowsError(try writeAtomically(Data([1]), to: url)) { error in
            guard let failure = error as? AtomicWriteError else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(failure.step, .createTemporaryFile)
            XCTAssertEqual(failure.path, url.path)
            XCTAssertTrue(failure.description.hasPrefix("could not save \(url.path): "), failure.description)
        }
    }
}
