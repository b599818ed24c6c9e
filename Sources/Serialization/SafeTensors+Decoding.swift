import Foundation
import Graph

// Reading a safetensors file: the header checked entry by entry, the data section converted to `F32`.

extension SafeTensors {
    /// One validated header entry.
    private struct Entry {
        var name: String
        var dtype: DType
        var shape: [Int]
        var begin: Int
        var end: Int
    }

    static func decode(bytes: UnsafeRawBufferPointer, source: String) throws
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
        let header: JSON
        do {
            header = try JSON.parse(headerBytes, limits: headerLimits)
        } catch let error as JSONError {
            throw headerError(error, source: source)
        }
        guard case let .object(members) = header else {
            throw SafeTensorsError.invalidHeader(file: source, reason: "the header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for member in members.members {
            if member.key == "__metadata__" {
                metadata = try parseMetadata(member.value, source: source)
            } else {
                entries.append(try parseEntry(name: member.key, member.value, source: source))
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

    /// Deep enough for any header, shallow enough that hostile nesting fails fast; the header's length is
    /// already bounded by the file's.
    private static let headerLimits = JSON.Limits(maximumByteCount: .max, maximumDepth: 64)

    /// The header's JSON error as a safetensors error: a key repeated at the top level names a tensor twice;
    /// any other repetition or syntax error makes the header invalid, with its line and column.
    private static func headerError(_ error: JSONError, source: String) -> SafeTensorsError {
        switch error {
        case let .duplicateKey(key, path, _, line, column):
            if path.isEmpty && key != "__metadata__" { return .duplicateName(file: source, name: key) }
            let what = switch path.first {
            case nil: "\"__metadata__\" appears twice"
            case .key("__metadata__") where path.count == 1: "metadata key '\(key)' appears twice"
            case .key(let name) where path.count == 1: "tensor '\(name)': field '\(key)' appears twice"
            default: JSONError.duplicateKeyMessage(key: key, path: path)
            }
            return .invalidHeader(file: source, reason: "line \(line), column \(column): \(what)")
        case let .syntax(_, line, column, message):
            return .invalidHeader(file: source, reason: "line \(line), column \(column): \(message)")
        default:
            return .invalidHeader(file: source, reason: error.description)
        }
    }

    private static func parseMetadata(_ value: JSON, source: String) throws -> [String: String] {
        if case .null = value { return [:] }
        guard case let .object(members) = value else {
            throw SafeTensorsError.invalidHeader(file: source, reason: "\"__metadata__\" is not an object")
        }
        var metadata: [String: String] = [:]
        for member in members.members {
            guard case let .string(text) = member.value else {
                throw SafeTensorsError.invalidHeader(file: source, reason: "metadata value for '\(member.key)' is not a string")
            }
            metadata[member.key] = text
        }
        return metadata
    }

    /// The integer `value` spells with digits alone: `[2.0]`, `8e0` and `-2` are not shapes or offsets, and an
    /// integer above 2^53 is read exactly rather than rounded through `Double`.
    private static func nonNegativeInteger(_ value: JSON) -> Int? {
        guard case .number(let number) = value, number.literal?.first != "-", let integer = number.exactInteger
        else { return nil }
        return integer
    }

    /// A short rendering of a shape or offset element for error messages.
    private static func text(_ value: JSON) -> String {
        switch value {
        case .number(let number): number.literal ?? JSON.format(number.value)
        case .object: "{...}"
        case .array: "[...]"
        default: value.serialized()
        }
    }

    private static func parseEntry(name: String, _ value: JSON, source: String) throws -> Entry {
        func invalid(_ reason: String) -> SafeTensorsError {
            .invalidHeader(file: source, reason: "tensor '\(name)': \(reason)")
        }
        // Unknown fields are ignored, as the reference reader does; the parser has refused repeated ones.
        guard case let .object(fields) = value else { throw invalid("entry is not an object") }
        guard case let .string(dtypeName)? = fields["dtype"] else { throw invalid("missing string field 'dtype'") }
        guard case let .array(shapeValues)? = fields["shape"] else { throw invalid("missing array field 'shape'") }
        guard case let .array(offsetValues)? = fields["data_offsets"] else {
            throw invalid("missing array field 'data_offsets'")
        }
        var shape: [Int] = []
        for value in shapeValues {
            guard let dimension = nonNegativeInteger(value) else {
                throw invalid("shape \(shapeValues.map(text)) holds something other than a non-negative integer")
            }
            shape.append(dimension)
        }
        guard offsetValues.count == 2, let begin = nonNegativeInteger(offsetValues[0]),
              let end = nonNegativeInteger(offsetValues[1]) else {
            throw invalid("data_offsets \(offsetValues.map(text)) is not two non-negative integers")
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
