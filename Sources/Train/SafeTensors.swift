import Foundation
import Graph

/// Reading and writing named tensors in the safetensors format, the weight format of Hugging Face, PyTorch
/// (`safetensors.torch`), Keras 3 and others.
///
/// A file is laid out as
/// ```
/// [8 bytes: N, little-endian UInt64] [N bytes: JSON header] [data section]
/// ```
/// The header maps each tensor's name to `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}`,
/// offsets counted from the start of the data section, plus an optional `"__metadata__"` object of strings.
/// Tensor bytes are little-endian, row-major, and must tile the data section exactly.
///
/// Files written here hold `F32` tensors in name order, the header padded with spaces to a multiple of
/// 8 bytes, and a CRC-32 under the metadata key ``checksumKey``, which the reader verifies when present.
public enum SafeTensors {
    /// The metadata key holding the CRC-32 (8 lowercase hexadecimal digits) that guards the tensors.
    ///
    /// The checksum covers, for each tensor in ascending order of its name's UTF-8 bytes: the name, a zero
    /// byte, the dtype, a zero byte, the shape as decimal numbers separated by commas, a zero byte, then the
    /// tensor's bytes as stored. So a corrupted name, dtype, shape or value is caught, while the other
    /// metadata stays free to edit. The key is reserved: ``encode(_:metadata:)`` overwrites it, and
    /// ``decode(_:source:)`` does not return it.
    public static let checksumKey = "unroll.crc32"

    /// Returns the safetensors bytes of `tensors` (stored as `F32`) and string `metadata`.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> Data {
        let named = tensors.sorted { utf8Precedes($0.key, $1.key) }
        var ranges: [Range<Int>] = []
        var end = 0
        for (_, tensor) in named {
            ranges.append(end..<end + 4 * tensor.count)
            end += 4 * tensor.count
        }
        var data = Data(count: end)
        var crc = CRC32()
        data.withUnsafeMutableBytes { output in
            for ((name, tensor), range) in zip(named, ranges) {
                tensor.withUnsafeBufferPointer { scalars in
                    for (index, scalar) in scalars.enumerated() {
                        output.storeBytes(of: scalar.bitPattern.littleEndian, toByteOffset: range.lowerBound + 4 * index,
                                          as: UInt32.self)
                    }
                }
                crc.update(with: checksumPrefix(name: name, dtype: DType.f32.rawValue, shape: tensor.shape))
                crc.update(with: UnsafeRawBufferPointer(rebasing: output[range]))
            }
        }
        var storedMetadata = metadata
        storedMetadata[checksumKey] = hexadecimal(crc.checksum)

        var header = "{\"__metadata__\":{"
        header += storedMetadata.keys.sorted(by: utf8Precedes)
            .map { "\(jsonString($0)):\(jsonString(storedMetadata[$0]!))" }
            .joined(separator: ",")
        header += "}"
        for ((name, tensor), range) in zip(named, ranges) {
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            header += ",\(jsonString(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(range.lowerBound),\(range.upperBound)]}"
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        // Padding makes the data section start 8-byte aligned, which memory-mapping readers rely on.
        headerBytes += Array(repeating: UInt8(ascii: " "), count: (8 - headerBytes.count % 8) % 8)

        var file = Data(capacity: 8 + headerBytes.count + data.count)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: headerBytes)
        file.append(data)
        return file
    }

    /// Returns the tensors and metadata in safetensors bytes, converting every supported dtype to `Float`.
    ///
    /// Supported dtypes: `F32`, `F64`, `F16`, `BF16`, `I64`, `I32`, `I16`, `I8`, `U64`, `U32`, `U16`, `U8`
    /// and `BOOL` (conversions round to the nearest `Float`). The header and layout are checked as strictly as
    /// the reference implementation does, and the checksum under ``checksumKey`` is verified when present.
    ///
    /// - Parameter source: names the data in errors, usually the file's path.
    /// - Throws: ``SafeTensorsError`` naming `source` and the problem.
    public static func decode(_ data: Data, source: String = "<data>") throws
        -> (tensors: [String: Tensor], metadata: [String: String]) {
        try data.withUnsafeBytes { try decode(bytes: $0, source: source) }
    }

    /// Writes `tensors` and `metadata` to the file at `url` through ``writeAtomically(_:to:)``, so an
    /// interrupted save leaves any previous file intact.
    ///
    /// - Throws: ``AtomicWriteError`` when the file cannot be written.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        try writeAtomically(encode(tensors, metadata: metadata), to: url)
    }

    /// Reads the tensors and metadata of the safetensors file at `url`; see ``decode(_:source:)``.
    ///
    /// - Throws: ``SafeTensorsError`` naming the file's path and the problem.
    public static func read(from url: URL) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw SafeTensorsError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        return try decode(data, source: url.path)
    }
}

/// A problem found while reading safetensors data; every case names the file and the problem.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    /// The data ends before the `expected` byte count that its header implies; `actual` bytes are present.
    case truncated(file: String, expected: Int, actual: Int)
    /// The header is not a well-formed safetensors header: not UTF-8, not a JSON object, or an entry lacking
    /// or misspelling a field.
    case invalidHeader(file: String, reason: String)
    /// A tensor's dtype is unknown or cannot be converted to `Float` (for example `F8_E4M3`).
    case unsupportedDtype(file: String, name: String, dtype: String)
    /// A tensor's `data_offsets` span `actualByteCount` bytes where its shape and dtype need `expectedByteCount`.
    case shapeMismatch(file: String, name: String, shape: [Int], dtype: String,
                       expectedByteCount: Int, actualByteCount: Int)
    /// The tensors' data regions overlap, leave a gap, or do not end exactly at the end of the data.
    case invalidLayout(file: String, reason: String)
    /// Two header entries have the same name.
    case duplicateName(file: String, name: String)
    /// The checksum stored under ``SafeTensors/checksumKey`` differs from the one computed from the tensors.
    case checksumMismatch(file: String, stored: String, computed: String)
    /// The file could not be read at all.
    case unreadable(file: String, reason: String)

    /// A sentence naming the file and the problem.
    public var description: String {
        switch self {
        case let .truncated(file, expected, actual):
            return "\(file): truncated safetensors data: expected \(expected) bytes, found \(actual)"
        case let .invalidHeader(file, reason):
            return "\(file): invalid safetensors header: \(reason)"
        case let .unsupportedDtype(file, name, dtype):
            return "\(file): tensor '\(name)' has unsupported dtype '\(dtype)'"
        case let .shapeMismatch(file, name, shape, dtype, expected, actual):
            return "\(file): tensor '\(name)' of shape \(shape) and dtype \(dtype) needs \(expected) bytes, "
                + "but its data_offsets span \(actual)"
        case let .invalidLayout(file, reason):
            return "\(file): invalid safetensors layout: \(reason)"
        case let .duplicateName(file, name):
            return "\(file): tensor name '\(name)' appears twice in the header"
        case let .checksumMismatch(file, stored, computed):
            return "\(file): checksum mismatch (stored \(stored), computed \(computed)): the file is corrupted"
        case let .unreadable(file, reason):
            return "\(file): cannot read: \(reason)"
        }
    }
}

// MARK: - Decoding

extension SafeTensors {
    /// One validated header entry.
    private struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    private static func decode(bytes: UnsafeRawBufferPointer, source: String) throws
        -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw SafeTensorsError.truncated(file: source, expected: 8, actual: bytes.count) }
        let declaredLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declaredLength <= UInt64(bytes.count - 8) else {
            let expected = declaredLength.addingReportingOverflow(8)
            throw SafeTensorsError.truncated(file: source, expected: expected.overflow ? .max : Int(clamping: expected.partialValue),
                                             actual: bytes.count)
        }
        let headerLength = Int(declaredLength)
        let headerBytes = Array(bytes[8..<8 + headerLength])
        guard String(validating: headerBytes, as: UTF8.self) != nil else {
            throw SafeTensorsError.invalidHeader(file: source, reason: "the header is not valid UTF-8")
        }
        let header: JSONValue
        do {
            var parser = JSONParser(bytes: headerBytes)
            header = try parser.parseDocument()
        } catch let failure as JSONParser.Failure {
            throw SafeTensorsError.invalidHeader(file: source, reason: failure.describe(in: headerBytes))
        }
        guard case let .object(members) = header else {
            throw SafeTensorsError.invalidHeader(file: source, reason: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else {
                if name == "__metadata__" {
                    throw SafeTensorsError.invalidHeader(file: source, reason: "\"__metadata__\" appears twice")
                }
                throw SafeTensorsError.duplicateName(file: source, name: name)
            }
            if name == "__metadata__" {
                metadata = try parseMetadata(value, source: source)
            } else {
                entries.append(try parseEntry(name: name, value, source: source))
            }
        }

        let dataStart = 8 + headerLength
        try checkLayout(entries, dataCount: bytes.count - dataStart, headerEnd: dataStart, source: source)
        let data = UnsafeRawBufferPointer(rebasing: bytes[dataStart...])

        if let stored = metadata.removeValue(forKey: checksumKey) {
            var crc = CRC32()
            for entry in entries.sorted(by: { utf8Precedes($0.name, $1.name) }) {
                crc.update(with: checksumPrefix(name: entry.name, dtype: entry.dtype.rawValue, shape: entry.shape))
                crc.update(with: UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end]))
            }
            let computed = hexadecimal(crc.checksum)
            guard stored == computed else {
                throw SafeTensorsError.checksumMismatch(file: source, stored: stored, computed: computed)
            }
        }

        var tensors: [String: Tensor] = [:]
        for entry in entries {
            var tensor = Tensor.zeros(entry.shape)
            tensor.withUnsafeMutableBufferPointer { output in
                convert(UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end]), as: entry.dtype, into: output)
            }
            tensors[entry.name] = tensor
        }
        return (tensors, metadata)
    }

    private static func parseMetadata(_ value: JSONValue, source: String) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case let .object(members) = value else {
            throw SafeTensorsError.invalidHeader(file: source, reason: "\"__metadata__\" is not an object")
        }
        var metadata: [String: String] = [:]
        for (key, value) in members {
            guard case let .string(text) = value else {
                throw SafeTensorsError.invalidHeader(file: source, reason: "metadata value for '\(key)' is not a string")
            }
            guard metadata.updateValue(text, forKey: key) == nil else {
                throw SafeTensorsError.invalidHeader(file: source, reason: "metadata key '\(key)' appears twice")
            }
        }
        return metadata
    }

    private static func parseEntry(name: String, _ value: JSONValue, source: String) throws -> Entry {
        func invalid(_ reason: String) -> SafeTensorsError {
            .invalidHeader(file: source, reason: "tensor '\(name)': \(reason)")
        }
        guard case let .object(members) = value else { throw invalid("entry is not an object") }
        var fields: [String: JSONValue] = [:]
        for (key, value) in members {
            // Unknown fields are ignored, as the reference reader does, but a repeated one is ambiguous.
            guard fields.updateValue(value, forKey: key) == nil else { throw invalid("field '\(key)' appears twice") }
        }
        guard case let .string(dtypeName)? = fields["dtype"] else { throw invalid("missing string field 'dtype'") }
        guard case let .array(shapeValues)? = fields["shape"] else { throw invalid("missing array field 'shape'") }
        guard case let .array(offsetValues)? = fields["data_offsets"] else {
            throw invalid("missing array field 'data_offsets'")
        }
        var shape: [Int] = []
        for value in shapeValues {
            guard let dimension = value.nonNegativeInteger else {
                throw invalid("shape \(shapeValues.map(\.text)) holds something other than a non-negative integer")
            }
            shape.append(dimension)
        }
        guard offsetValues.count == 2, let begin = offsetValues[0].nonNegativeInteger,
              let end = offsetValues[1].nonNegativeInteger else {
            throw invalid("data_offsets \(offsetValues.map(\.text)) is not two non-negative integers")
        }
        guard let dtype = DType(rawValue: dtypeName) else {
            throw SafeTensorsError.unsupportedDtype(file: source, name: name, dtype: dtypeName)
        }
        guard begin <= end else { throw invalid("data_offsets [\(begin), \(end)] end before they begin") }
        var byteCount = dtype.size
        for dimension in shape {
            let product = byteCount.multipliedReportingOverflow(by: dimension)
            guard !product.overflow else { throw invalid("shape \(shape) is too large") }
            byteCount = product.partialValue
        }
        guard end - begin == byteCount else {
            throw SafeTensorsError.shapeMismatch(file: source, name: name, shape: shape, dtype: dtypeName,
                                                 expectedByteCount: byteCount, actualByteCount: end - begin)
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
    }

    /// Checks that the tensors' byte ranges tile `0..<dataCount` exactly, as the reference reader requires.
    private static func checkLayout(_ entries: [Entry], dataCount: Int, headerEnd: Int, source: String) throws {
        var expected = 0
        var previous: String?
        for entry in entries.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            if entry.begin < expected {
                throw SafeTensorsError.invalidLayout(
                    file: source, reason: "tensor '\(entry.name)' at bytes \(entry.begin)..<\(entry.end) overlaps "
                        + "tensor '\(previous ?? "")', which ends at \(expected)")
            }
            if entry.begin > expected {
                throw SafeTensorsError.invalidLayout(
                    file: source, reason: "bytes \(expected)..<\(entry.begin) before tensor '\(entry.name)' belong to no tensor")
            }
            expected = entry.end
            previous = entry.name
        }
        if expected > dataCount {
            throw SafeTensorsError.truncated(file: source, expected: headerEnd + expected, actual: headerEnd + dataCount)
        }
        if expected < dataCount {
            throw SafeTensorsError.invalidLayout(
                file: source, reason: "\(dataCount - expected) bytes after the last tensor belong to no tensor")
        }
    }

    /// Fills `output` from little-endian `bytes` of `dtype`; the caller has checked the sizes agree.
    private static func convert(_ bytes: UnsafeRawBufferPointer, as dtype: DType,
                                into output: UnsafeMutableBufferPointer<Float>) {
        func load<Stored: FixedWidthInteger>(_: Stored.Type, _ transform: (Stored) -> Float) {
            let stride = MemoryLayout<Stored>.size
            for index in output.indices {
                output[index] = transform(Stored(littleEndian: bytes.loadUnaligned(fromByteOffset: index * stride,
                                                                                  as: Stored.self)))
            }
        }
        switch dtype {
        case .f32: load(UInt32.self) { Float(bitPattern: $0) }
        case .f64: load(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .f16: load(UInt16.self, floatFromHalf)
        case .bf16: load(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }
        case .i64: load(Int64.self) { Float($0) }
        case .i32: load(Int32.self) { Float($0) }
        case .i16: load(Int16.self) { Float($0) }
        case .i8: load(Int8.self) { Float($0) }
        case .u64: load(UInt64.self) { Float($0) }
        case .u32: load(UInt32.self) { Float($0) }
        case .u16: load(UInt16.self) { Float($0) }
        case .u8: load(UInt8.self) { Float($0) }
        case .bool: load(UInt8.self) { $0 == 0 ? 0 : 1 }
        }
    }

    /// Converts IEEE 754 half precision bits to `Float` exactly (every half is a float).
    static func floatFromHalf(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            // Rebias the exponent from 15 to 127.
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}

// MARK: - Shared helpers

extension SafeTensors {
    /// The element types this reader converts, named as in the header.
    private enum DType: String {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
        case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
        case bool = "BOOL"

        var size: Int {
            switch self {
            case .f64, .i64, .u64: 8
            case .f32, .i32, .u32: 4
            case .f16, .bf16, .i16, .u16: 2
            case .i8, .u8, .bool: 1
            }
        }
    }

    /// The bytes that precede a tensor's data in the checksummed stream; see ``checksumKey``.
    private static func checksumPrefix(name: String, dtype: String, shape: [Int]) -> [UInt8] {
        Array(name.utf8) + [0] + Array(dtype.utf8) + [0]
            + Array(shape.map(String.init).joined(separator: ",").utf8) + [0]
    }

    private static func hexadecimal(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Orders names by their UTF-8 bytes (that is, by code point), as Python and Rust do, rather than by
    /// Swift's `<`, which compares canonical forms.
    private static func utf8Precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// Returns `text` as a JSON string literal; characters beyond ASCII stay as UTF-8.
    private static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

// MARK: - JSON

/// A parsed JSON value. Objects keep their members in order, duplicates included, so the caller decides what
/// a repeated key means; numbers keep their text, so integers are never rounded through `Double`.
private indirect enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case boolean(Bool)
    case null

    /// The value, if it is a JSON integer literal without sign, fraction or exponent that fits in `Int`.
    var nonNegativeInteger: Int? {
        guard case let .number(text) = self, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text)
    }

    /// A short rendering for error messages.
    var text: String {
        switch self {
        case .object: "{...}"
        case .array: "[...]"
        case let .string(text): "\"\(text)\""
        case let .number(text): text
        case let .boolean(value): String(value)
        case .null: "null"
        }
    }
}

/// A strict RFC 8259 parser for the header. Hand-written rather than `JSONSerialization` because the
/// header's rules need what that API hides: repeated keys, and integers told apart from `1.0` or `1e3`.
private struct JSONParser {
    /// A syntax error at a byte position of the header.
    struct Failure: Error {
        let position: Int
        let message: String

        /// The message with a line and column (counted in bytes, from 1) in `bytes`.
        func describe(in bytes: [UInt8]) -> String {
            let before = bytes[..<min(position, bytes.count)]
            let line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
            let column = before.count - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
            return "line \(line), column \(column): \(message)"
        }
    }

    /// Deep enough for any header, shallow enough that hostile nesting cannot exhaust the stack.
    private static let maximumDepth = 64

    let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws -> JSONValue {
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        guard position == bytes.count else { throw failure("unexpected text after the JSON value") }
        return value
    }

    private func failure(_ message: String) -> Failure {
        Failure(position: position, message: message)
    }

    private mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    private mutating func expect(_ character: UInt8, _ context: String) throws {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == character else {
            throw failure("expected '\(Character(Unicode.Scalar(character)))' \(context)")
        }
        position += 1
    }

    private mutating func parseValue() throws -> JSONValue {
        skipWhitespace()
        guard position < bytes.count else { throw failure("unexpected end of the header") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): try parseLiteral("true"); return .boolean(true)
        case UInt8(ascii: "f"): try parseLiteral("false"); return .boolean(false)
        case UInt8(ascii: "n"): try parseLiteral("null"); return .null
        default: throw failure("expected a JSON value")
        }
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func parseObject() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw failure("expected a string key")
            }
            let key = try parseString()
            try expect(UInt8(ascii: ":"), "after an object key")
            members.append((key, try parseValue()))
            skipWhitespace()
            guard position < bytes.count else { throw failure("unterminated object") }
            if bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            try expect(UInt8(ascii: ","), "or '}' after an object member")
        }
    }

    private mutating func parseArray() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw failure("unterminated array") }
            if bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            try expect(UInt8(ascii: ","), "or ']' after an array element")
        }
    }

    /// Parses a string literal. The whole header was checked to be UTF-8 beforehand, and a literal only
    /// splits at ASCII bytes, so the raw runs it copies stay valid UTF-8.
    private mutating func parseString() throws -> String {
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard position < bytes.count else { throw failure("unterminated string") }
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                let scalar = try parseEscape()
                UTF8.encode(scalar) { utf8.append($0) }
            case 0..<0x20:
                position -= 1
                throw failure("unescaped control character in a string")
            default:
                utf8.append(byte)
            }
        }
    }

    private mutating func parseEscape() throws -> Unicode.Scalar {
        guard position < bytes.count else { throw failure("unterminated escape") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try parseHexadecimalUnit()
            if (0xD800...0xDBFF).contains(unit) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else { throw failure("unpaired surrogate escape") }
                position += 2
                let low = try parseHexadecimalUnit()
                guard (0xDC00...0xDFFF).contains(low) else { throw failure("unpaired surrogate escape") }
                return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(unit) else { throw failure("unpaired surrogate escape") }
            return scalar
        default:
            position -= 1
            throw failure("invalid escape")
        }
    }

    private mutating func parseHexadecimalUnit() throws -> UInt32 {
        var unit: UInt32 = 0
        for _ in 0..<4 {
            guard position < bytes.count, let digit = Character(Unicode.Scalar(bytes[position])).hexDigitValue else {
                throw failure("expected four hexadecimal digits after \\u")
            }
            unit = unit << 4 | UInt32(digit)
            position += 1
        }
        return unit
    }

    private mutating func parseNumber() throws -> String {
        let start = position
        func digits() -> Int {
            let first = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            return position - first
        }
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0 else { throw failure("expected a digit") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else {
            throw failure("leading zero in a number")
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw failure("expected a digit after the decimal point") }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") {
                position += 1
            }
            guard digits() > 0 else { throw failure("expected a digit in the exponent") }
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }

    private mutating func parseLiteral(_ literal: String) throws {
        let expected = Array(literal.utf8)
        guard position + expected.count <= bytes.count,
              bytes[position..<position + expected.count].elementsEqual(expected) else {
            throw failure("expected a JSON value")
        }
        position += expected.count
    }
}
