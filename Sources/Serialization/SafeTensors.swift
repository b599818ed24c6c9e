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
            .map { "\(quoted($0)):\(quoted(storedMetadata[$0]!))" }
            .joined(separator: ",")
        header += "}"
        for ((name, tensor), range) in zip(named, ranges) {
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            header += ",\(quoted(name)):{\"dtype\":\"F32\",\"shape\":[\(shape)],"
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

    /// Writes `tensors` and `metadata` to the file at `url` atomically (a temporary file beside it, flushed to
    /// disk, renamed over it), so an interrupted save leaves any previous file intact.
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

// MARK: - Shared by encoding and decoding

extension SafeTensors {
    /// The element types this reader converts, named as in the header.
    enum DType: String {
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
    static func checksumPrefix(name: String, dtype: String, shape: [Int]) -> [UInt8] {
        Array(name.utf8) + [0] + Array(dtype.utf8) + [0]
            + Array(shape.map(String.init).joined(separator: ",").utf8) + [0]
    }

    /// Returns `text` as a JSON string literal, written by the package's one JSON writer.
    private static func quoted(_ text: String) -> String { JSON.string(text).serialized() }

    /// Orders names by their UTF-8 bytes (that is, by code point), as Python and Rust do, rather than by
    /// Swift's `<`, which compares canonical forms.
    static func utf8Precedes(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }
}
