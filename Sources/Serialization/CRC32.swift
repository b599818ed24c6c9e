import Foundation

/// A running CRC-32 checksum (IEEE 802.3: the one zlib, gzip and PNG use), fed in pieces.
///
/// ```swift
/// var crc = CRC32()
/// crc.update(with: header)
/// crc.update(with: body)
/// let value = crc.checksum     // CRC32.checksum(of: header + body)
/// ```
///
/// A CRC-32 detects every error confined to 32 consecutive bits, so any single corrupted byte.
package struct CRC32: Sendable, Equatable {
    /// The reflected form of the polynomial 0x04C11DB7.
    private static let polynomial: UInt32 = 0xEDB8_8320

    /// For each byte value, its remainder after eight shift-and-reduce steps, so the main loop takes one lookup
    /// per byte instead of eight conditional shifts.
    private static let table: [UInt32] = (0..<256).map { byte in
        var remainder = UInt32(byte)
        for _ in 0..<8 {
            remainder = remainder & 1 == 1 ? (remainder >> 1) ^ polynomial : remainder >> 1
        }
        return remainder
    }

    /// The register, held inverted between updates as the algorithm specifies.
    private var state: UInt32 = 0xFFFF_FFFF

    /// Creates a checksum of no bytes.
    package init() {}

    /// Adds `bytes` to the checksummed stream.
    package mutating func update(with bytes: UnsafeRawBufferPointer) {
        var crc = state
        Self.table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        state = crc
    }

    /// Adds the bytes of `data` to the checksummed stream.
    package mutating func update(with data: Data) {
        data.withUnsafeBytes { update(with: $0) }
    }

    /// Adds `bytes` to the checksummed stream.
    package mutating func update(with bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(with: $0) }
    }

    /// The CRC-32 of every byte added so far.
    package var checksum: UInt32 { state ^ 0xFFFF_FFFF }

    /// Returns the CRC-32 of `data`.
    package static func checksum(of data: Data) -> UInt32 {
        var crc = CRC32()
        crc.update(with: data)
        return crc.checksum
    }
}

/// Returns a CRC-32 (or any 32-bit value) as eight lowercase hexadecimal digits, as every checksum is written.
func hexadecimal(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
