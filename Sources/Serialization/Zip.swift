/// Reading and writing zip archives whose entries are stored uncompressed (method 0), as `.keras` files are.
///
/// Written from PKWARE's APPNOTE: the end of central directory record locates the central directory, whose
/// entries are authoritative for sizes and CRC-32 (so local headers followed by data descriptors read too);
/// zip64 sizes and offsets (the zip64 end record and extra field `0x0001`) are understood. Every offset and
/// size is checked against the archive's length before use, and each entry's CRC-32 is verified when read.
/// Compression, encryption and multi-disk archives are outside the subset and throw ``ZipError/unsupported(_:)``.
package struct ZipArchive: Sendable {
    /// One stored entry: its name and where its bytes lie in the archive.
    package struct Entry: Equatable, Sendable {
        /// The entry's path inside the archive (`config.json`).
        package var name: String
        /// The offset of the entry's first byte.
        package var dataOffset: Int
        /// The number of bytes.
        package var size: Int
        /// The CRC-32 the central directory records.
        package var crc32: UInt32
    }

    /// The entries in central-directory order.
    package let entries: [Entry]
    private let bytes: [UInt8]
    private let source: String

    /// Reads the central directory of the archive in `bytes`; `source` names it in errors (the file's path).
    ///
    /// - Throws: ``ZipError`` naming the record and problem.
    package init(bytes: [UInt8], source: String = "<archive>") throws {
        self.bytes = bytes
        self.source = source
        entries = try ZipArchive.readDirectory(LittleEndianBytes(bytes: bytes), source: source)
    }

    /// Returns the bytes of the entry `name`, verified against its CRC-32.
    ///
    /// - Throws: ``ZipError/missingEntry(archive:name:)`` or ``ZipError/checksumMismatch(archive:entry:stored:computed:)``.
    package func contents(of name: String) throws -> [UInt8] {
        guard let entry = entries.first(where: { $0.name == name }) else {
            throw ZipError.missingEntry(archive: source, name: name)
        }
        let data = Array(bytes[entry.dataOffset..<entry.dataOffset + entry.size])
        var crc = CRC32()
        crc.update(with: data)
        guard crc.checksum == entry.crc32 else {
            throw ZipError.checksumMismatch(archive: source, entry: name, stored: entry.crc32, computed: crc.checksum)
        }
        return data
    }

    /// Returns a stored zip archive of `entries`, in order, with CRC-32s and fixed timestamps (1980-01-01) so the
    /// same contents give the same bytes.
    ///
    /// - Throws: ``ZipError/unsupported(_:)`` for an entry of 4 GiB or more, or more than 65,534 entries
    ///   (those need zip64 records, which this writer does not produce).
    package static func archive(_ entries: [(name: String, contents: [UInt8])]) throws -> [UInt8] {
        guard entries.count < 0xFFFF else { throw ZipError.unsupported("\(entries.count) entries (zip64 is not written)") }
        var output: [UInt8] = []
        var directory: [UInt8] = []
        for (name, contents) in entries {
            let nameBytes = Array(name.utf8)
            guard contents.count < 0xFFFF_FFFF, output.count < 0xFFFF_FFFF, nameBytes.count < 0xFFFF else {
                throw ZipError.unsupported("entry '\(name)' beyond 4 GiB (zip64 is not written)")
            }
            var crc = CRC32()
            crc.update(with: contents)
            let isASCII = nameBytes.allSatisfy { $0 < 0x80 }
            let offset = UInt32(output.count)
            func common(_ record: inout [UInt8]) {
                record.appendLittleEndian(UInt16(20))                       // version needed: 2.0
                record.appendLittleEndian(UInt16(isASCII ? 0 : 0x0800))     // bit 11: the name is UTF-8
                record.appendLittleEndian(UInt16(0))                        // method: stored
                record.appendLittleEndian(UInt16(0))                        // time 00:00:00
                record.appendLittleEndian(UInt16(0x21))                     // date 1980-01-01
                record.appendLittleEndian(crc.checksum)
                record.appendLittleEndian(UInt32(contents.count))
                record.appendLittleEndian(UInt32(contents.count))
                record.appendLittleEndian(UInt16(nameBytes.count))
                record.appendLittleEndian(UInt16(0))                        // extra field length
            }
            output.appendLittleEndian(Signature.localHeader)
            common(&output)
            output += nameBytes
            output += contents

            directory.appendLittleEndian(Signature.centralHeader)
            directory.appendLittleEndian(UInt16(3 << 8 | 20))              // made by: Unix, 2.0
            common(&directory)
            directory.appendLittleEndian(UInt16(0))                        // comment length
            directory.appendLittleEndian(UInt16(0))                        // disk number
            directory.appendLittleEndian(UInt16(0))                        // internal attributes
            directory.appendLittleEndian(UInt32(0o100644) << 16)           // external: regular file, rw-r--r--
            directory.appendLittleEndian(offset)
            directory += nameBytes
        }
        guard output.count < 0xFFFF_FFFF, directory.count < 0xFFFF_FFFF else {
            throw ZipError.unsupported("an archive beyond 4 GiB (zip64 is not written)")
        }
        let directoryOffset = UInt32(output.count)
        output += directory
        output.appendLittleEndian(Signature.endOfDirectory)
        output.appendLittleEndian(UInt16(0))                               // this disk
        output.appendLittleEndian(UInt16(0))                               // disk with the directory
        output.appendLittleEndian(UInt16(entries.count))
        output.appendLittleEndian(UInt16(entries.count))
        output.appendLittleEndian(UInt32(directory.count))
        output.appendLittleEndian(directoryOffset)
        output.appendLittleEndian(UInt16(0))                               // comment length
        return output
    }
}

/// A problem reading a zip archive; every case names the archive.
package enum ZipError: Error, CustomStringConvertible, Equatable {
    /// No end of central directory record: not a zip archive, or one cut short.
    case notAnArchive(archive: String)
    /// A record is malformed or points outside the archive; `offset` is where the record starts.
    case invalidRecord(archive: String, offset: Int, reason: String)
    /// A feature outside the stored-entries subset (compression, encryption, several disks).
    case unsupported(String)
    /// An entry's bytes do not match the CRC-32 recorded for them.
    case checksumMismatch(archive: String, entry: String, stored: UInt32, computed: UInt32)
    /// The archive has no entry of that name.
    case missingEntry(archive: String, name: String)

    /// A sentence naming the archive and the problem.
    package var description: String {
        switch self {
        case .notAnArchive(let archive): "\(archive): not a zip archive (no end of central directory record)"
        case let .invalidRecord(archive, offset, reason): "\(archive): invalid zip record at byte \(offset): \(reason)"
        case .unsupported(let what): "zip archive: \(what) is not supported (only stored, unencrypted entries)"
        case let .checksumMismatch(archive, entry, stored, computed):
            "\(archive): entry '\(entry)' is corrupted: CRC-32 \(hexadecimal(computed)), recorded \(hexadecimal(stored))"
        case let .missingEntry(archive, name): "\(archive): no entry named '\(name)'"
        }
    }
}

private enum Signature {
    static let localHeader: UInt32 = 0x0403_4B50
    static let centralHeader: UInt32 = 0x0201_4B50
    static let endOfDirectory: UInt32 = 0x0605_4B50
    static let zip64EndOfDirectory: UInt32 = 0x0606_4B50
    static let zip64Locator: UInt32 = 0x0706_4B50
}

// MARK: - Reading the directory

extension ZipArchive {
    private static func readDirectory(_ view: LittleEndianBytes, source: String) throws -> [Entry] {
        func invalid(_ offset: Int, _ reason: String) -> ZipError {
            .invalidRecord(archive: source, offset: offset, reason: reason)
        }
        // The end record (22 bytes) is followed by a comment of at most 65,535 bytes.
        guard view.count >= 22 else { throw ZipError.notAnArchive(archive: source) }
        var end = view.count - 22
        let lowest = max(0, view.count - 22 - 0xFFFF)
        while end >= lowest {
            if view.uint32(at: end) == Signature.endOfDirectory,
               let commentLength = view.uint16(at: end + 20), end + 22 + Int(commentLength) == view.count { break }
            end -= 1
        }
        guard end >= lowest else { throw ZipError.notAnArchive(archive: source) }
        guard let disk = view.uint16(at: end + 4), let directoryDisk = view.uint16(at: end + 6),
              let diskEntries = view.uint16(at: end + 8), let totalEntries = view.uint16(at: end + 10),
              let size32 = view.uint32(at: end + 12), let offset32 = view.uint32(at: end + 16) else {
            throw ZipError.notAnArchive(archive: source)
        }
        var entryCount = UInt64(totalEntries), directorySize = UInt64(size32), directoryOffset = UInt64(offset32)
        var directoryEnd = end
        if totalEntries == 0xFFFF || size32 == 0xFFFF_FFFF || offset32 == 0xFFFF_FFFF {
            let locator = end - 20
            guard locator >= 0, view.uint32(at: locator) == Signature.zip64Locator,
                  let recordOffset = view.uint64(at: locator + 8), recordOffset < UInt64(locator),
                  view.uint32(at: Int(recordOffset)) == Signature.zip64EndOfDirectory,
                  let count64 = view.uint64(at: Int(recordOffset) + 32),
                  let size64 = view.uint64(at: Int(recordOffset) + 40),
                  let offset64 = view.uint64(at: Int(recordOffset) + 48) else {
                throw invalid(end, "the end record asks for zip64 records that are missing or malformed")
            }
            entryCount = count64
            directorySize = size64
            directoryOffset = offset64
            directoryEnd = Int(recordOffset)
        } else if disk != 0 || directoryDisk != 0 || diskEntries != totalEntries {
            throw ZipError.unsupported("an archive split over several disks")
        }
        guard directoryOffset <= UInt64(directoryEnd), directorySize <= UInt64(directoryEnd) - directoryOffset else {
            throw invalid(end, "the central directory (\(directorySize) bytes at \(directoryOffset)) lies outside the archive")
        }
        // Each central header takes at least 46 bytes, which bounds the count before anything is allocated.
        guard entryCount <= directorySize / 46 else {
            throw invalid(end, "\(entryCount) entries cannot fit in a central directory of \(directorySize) bytes")
        }
        var entries: [Entry] = []
        var names = Set<String>()
        var position = Int(directoryOffset)
        let limit = Int(directoryOffset + directorySize)
        for _ in 0..<Int(entryCount) {
            let record = position
            guard position + 46 <= limit, view.uint32(at: position) == Signature.centralHeader,
                  let flags = view.uint16(at: position + 8), let method = view.uint16(at: position + 10),
                  let crc = view.uint32(at: position + 16), let compressed32 = view.uint32(at: position + 20),
                  let uncompressed32 = view.uint32(at: position + 24), let nameLength = view.uint16(at: position + 28),
                  let extraLength = view.uint16(at: position + 30), let commentLength = view.uint16(at: position + 32),
                  let diskStart = view.uint16(at: position + 34), let localOffset32 = view.uint32(at: position + 42) else {
                throw invalid(record, "expected a central directory header")
            }
            let variableLength = Int(nameLength) + Int(extraLength) + Int(commentLength)
            guard position + 46 + variableLength <= limit, let nameBytes = view.slice(at: position + 46, count: Int(nameLength)),
                  let extra = view.slice(at: position + 46 + Int(nameLength), count: Int(extraLength)) else {
                throw invalid(record, "the header's name, extra field and comment run past the central directory")
            }
            let name = String(decoding: nameBytes, as: UTF8.self)
            guard flags & 0x0001 == 0 else { throw ZipError.unsupported("entry '\(name)' is encrypted, which") }
            guard method == 0 else {
                throw ZipError.unsupported("entry '\(name)' compressed with method \(method) (\(methodName(method))), which")
            }
            var compressed = UInt64(compressed32), uncompressed = UInt64(uncompressed32), localOffset = UInt64(localOffset32)
            if compressed32 == 0xFFFF_FFFF || uncompressed32 == 0xFFFF_FFFF || localOffset32 == 0xFFFF_FFFF || diskStart == 0xFFFF {
                try readZip64Extra(LittleEndianBytes(bytes: Array(extra)), uncompressed: &uncompressed,
                                   compressed: &compressed, localOffset: &localOffset,
                                   needs: (uncompressed32 == 0xFFFF_FFFF, compressed32 == 0xFFFF_FFFF, localOffset32 == 0xFFFF_FFFF)) {
                    invalid(record, "entry '\(name)': \($0)")
                }
            }
            guard compressed == uncompressed else {
                throw invalid(record, "stored entry '\(name)' has \(compressed) bytes stored but \(uncompressed) uncompressed")
            }
            guard localOffset < directoryOffset, view.uint32(at: Int(localOffset)) == Signature.localHeader,
                  let localNameLength = view.uint16(at: Int(localOffset) + 26),
                  let localExtraLength = view.uint16(at: Int(localOffset) + 28) else {
                throw invalid(Int(clamping: localOffset), "expected the local header of entry '\(name)'")
            }
            let dataOffset = Int(localOffset) + 30 + Int(localNameLength) + Int(localExtraLength)
            guard UInt64(dataOffset) <= directoryOffset, uncompressed <= directoryOffset - UInt64(dataOffset) else {
                throw invalid(Int(localOffset), "entry '\(name)' (\(uncompressed) bytes at \(dataOffset)) runs into the central directory")
            }
            guard names.insert(name).inserted else { throw invalid(record, "the name '\(name)' appears twice") }
            entries.append(Entry(name: name, dataOffset: dataOffset, size: Int(uncompressed), crc32: crc))
            position += 46 + variableLength
        }
        return entries
    }

    /// Reads the zip64 extended information extra field (`0x0001`), whose values appear only for the fields
    /// that hold 0xFFFFFFFF, in the order uncompressed size, compressed size, local header offset.
    private static func readZip64Extra(_ extra: LittleEndianBytes, uncompressed: inout UInt64, compressed: inout UInt64,
                                       localOffset: inout UInt64, needs: (Bool, Bool, Bool),
                                       invalid: (String) -> ZipError) throws {
        var position = 0
        while position + 4 <= extra.count {
            guard let identifier = extra.uint16(at: position), let length = extra.uint16(at: position + 2),
                  extra.contains(offset: position + 4, count: Int(length)) else { break }
            if identifier == 0x0001 {
                var field = position + 4
                func next() throws -> UInt64 {
                    guard field + 8 <= position + 4 + Int(length), let value = extra.uint64(at: field) else {
                        throw invalid("the zip64 extra field is too short")
                    }
                    field += 8
                    return value
                }
                if needs.0 { uncompressed = try next() }
                if needs.1 { compressed = try next() }
                if needs.2 { localOffset = try next() }
                return
            }
            position += 4 + Int(length)
        }
        throw invalid("sizes marked as zip64 but no zip64 extra field")
    }

    private static func methodName(_ method: UInt16) -> String {
        switch method {
        case 8: "deflate"
        case 9: "deflate64"
        case 12: "bzip2"
        case 14: "LZMA"
        case 93: "Zstandard"
        default: "unknown"
        }
    }
}
