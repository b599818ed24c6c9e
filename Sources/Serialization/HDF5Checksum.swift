// The checksum of version 2 HDF5 metadata (superblocks 2 and 3, OHDR and OCHK blocks): Bob Jenkins' lookup3
// `hashlittle` with an initial value of 0, as the specification prescribes.

enum Lookup3 {
    /// Returns `hashlittle(bytes, 0)`, reading the bytes one at a time (the result does not depend on alignment).
    static func hash(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var a = 0xDEAD_BEEF &+ UInt32(truncatingIfNeeded: bytes.count)
        var b = a, c = a
        var index = bytes.startIndex
        var remaining = bytes.count
        func word(_ offset: Int, _ count: Int) -> UInt32 {
            var value: UInt32 = 0
            for byte in 0..<count { value |= UInt32(bytes[offset + byte]) << (8 * UInt32(byte)) }
            return value
        }
        while remaining > 12 {
            a &+= word(index, 4)
            b &+= word(index + 4, 4)
            c &+= word(index + 8, 4)
            a &-= c; a ^= c.rotated(4); c &+= b
            b &-= a; b ^= a.rotated(6); a &+= c
            c &-= b; c ^= b.rotated(8); b &+= a
            a &-= c; a ^= c.rotated(16); c &+= b
            b &-= a; b ^= a.rotated(19); a &+= c
            c &-= b; c ^= b.rotated(4); b &+= a
            index += 12
            remaining -= 12
        }
        guard remaining > 0 else { return c }
        a &+= word(index, min(remaining, 4))
        if remaining > 4 { b &+= word(index + 4, min(remaining - 4, 4)) }
        if remaining > 8 { c &+= word(index + 8, remaining - 8) }
        c ^= b; c &-= b.rotated(14)
        a ^= c; a &-= c.rotated(11)
        b ^= a; b &-= a.rotated(25)
        c ^= b; c &-= b.rotated(16)
        a ^= c; a &-= c.rotated(4)
        b ^= a; b &-= a.rotated(14)
        c ^= b; c &-= b.rotated(24)
        return c
    }
}

private extension UInt32 {
    func rotated(_ count: UInt32) -> UInt32 { self << count | self >> (32 - count) }
}

extension HDF5File {
    /// Checks the lookup3 checksum stored after `range` (absolute positions) of version 2 metadata.
    func verifyChecksum(of range: Range<Int>, address: Int, _ what: @autoclosure () -> String) throws {
        guard let stored = bytes.uint32(at: range.upperBound), range.lowerBound >= 0 else {
            throw HDF5Error.invalid(file: source, address: address, reason: "\(what()): its checksum lies outside the file")
        }
        let computed = Lookup3.hash(bytes.bytes[range])
        guard stored == computed else {
            throw HDF5Error.invalid(file: source, address: address,
                                    reason: "\(what()) is corrupted (checksum \(computed), stored \(stored))")
        }
    }
}
