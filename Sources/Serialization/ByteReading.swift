/// Bounds-checked little-endian reads of untrusted bytes: every read returns `nil` rather than trap when it
/// would leave the buffer, so a file format reader turns a bad offset into its own typed error.
struct LittleEndianBytes {
    let bytes: [UInt8]

    var count: Int { bytes.count }

    /// Returns the unsigned integer of `size` bytes (1...8) at `offset`, or `nil` if it does not fit.
    func integer(at offset: Int, size: Int) -> UInt64? {
        guard offset >= 0, size >= 0, size <= 8, offset <= bytes.count - size else { return nil }
        return bytes.withUnsafeBytes { raw in
            switch size {
            case 8: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            case 4: UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            case 2: UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
            case 1: UInt64(raw[offset])
            default:
                (0..<size).reversed().reduce(0) { $0 << 8 | UInt64(raw[offset + $1]) }
            }
        }
    }

    /// Whether the bytes at `offset` spell `signature` (ASCII).
    func matches(_ signature: StaticString, at offset: Int) -> Bool {
        let count = signature.utf8CodeUnitCount
        guard contains(offset: offset, count: count) else { return false }
        return (0..<count).allSatisfy { bytes[offset + $0] == signature.utf8Start[$0] }
    }

    func uint8(at offset: Int) -> UInt8? { integer(at: offset, size: 1).map { UInt8($0) } }
    func uint16(at offset: Int) -> UInt16? { integer(at: offset, size: 2).map { UInt16($0) } }
    func uint32(at offset: Int) -> UInt32? { integer(at: offset, size: 4).map { UInt32($0) } }
    func uint64(at offset: Int) -> UInt64? { integer(at: offset, size: 8) }

    /// Returns `count` bytes at `offset`, or `nil` if they do not all lie in the buffer.
    func slice(at offset: Int, count: Int) -> ArraySlice<UInt8>? {
        guard contains(offset: offset, count: count) else { return nil }
        return bytes[offset..<offset + count]
    }

    /// Whether `count` bytes at `offset` lie in the buffer (overflow-safe).
    func contains(offset: Int, count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= bytes.count && count <= bytes.count - offset
    }
}

/// Appends little-endian integers to a byte array.
extension Array where Element == UInt8 {
    mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Overwrites `Value.bitWidth / 8` bytes at `offset` with `value`, little-endian.
    mutating func storeLittleEndian<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { self[offset + index] = byte }
        }
    }
}
