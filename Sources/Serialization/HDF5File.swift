/// A reader for the subset of HDF5 that h5py writes for Keras weights, written from the HDF5 file-format
/// specification (version 3.0).
///
/// Supported: superblock versions 0, 1, 2 and 3; object header versions 1 and 2 (with continuation blocks);
/// groups stored as symbol tables (a version 1 B-tree of symbol table nodes with a local heap) or as compact
/// link messages; hard links; datasets with contiguous or compact layout, no filters, whose elements are
/// little-endian IEEE floats (32 or 64 bits) or integers (8 to 64 bits), of any rank including scalars.
/// Anything else (chunked or filtered datasets, dense link storage in a fractal heap, soft or external links,
/// shared messages, big-endian or other types) throws ``HDF5Error/unsupported(file:feature:)`` naming what was
/// found. The checksums of version 2 metadata (superblock, object header chunks) are verified; every address and size is checked
/// against the file's length, and loops, recursion and counts are bounded, so hostile bytes throw rather than
/// trap, hang or allocate without limit.
package struct HDF5File {
    /// The whole file.
    let bytes: LittleEndianBytes
    /// Names the file in errors.
    let source: String
    /// The size of an address (`O` in the specification) and of a length (`L`), in bytes.
    let offsetSize: Int
    let lengthSize: Int
    /// The address every other address is relative to.
    let baseAddress: Int
    /// The root group's object header.
    let rootAddress: Int

    /// Reads the superblock of the HDF5 file in `bytes`; `source` names it in errors.
    ///
    /// - Throws: ``HDF5Error`` when no superblock is found or it is malformed or of an unknown version.
    package init(bytes: [UInt8], source: String = "<hdf5>") throws {
        self.bytes = LittleEndianBytes(bytes: bytes)
        self.source = source
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        // The superblock sits at 0 or after a user block of 512, 1024, 2048, ... bytes.
        var start = 0
        while self.bytes.slice(at: start, count: 8).map(Array.init) != signature {
            start = start == 0 ? 512 : start * 2
            guard start < bytes.count else { throw HDF5Error.notHDF5(file: source) }
        }
        let view = self.bytes
        func invalid(_ reason: String) -> HDF5Error { .invalid(file: source, address: start, reason: "superblock: \(reason)") }
        guard let version = view.uint8(at: start + 8) else { throw invalid("truncated") }
        // The sizes of offsets and lengths: two bytes, where depends on the version.
        func sizes(at position: Int) throws -> (offsets: Int, lengths: Int) {
            guard let offsets = view.uint8(at: position), let lengths = view.uint8(at: position + 1) else {
                throw invalid("truncated")
            }
            guard [2, 4, 8].contains(offsets), [2, 4, 8].contains(lengths) else {
                throw invalid("sizes of offsets \(offsets) and lengths \(lengths) are not 2, 4 or 8")
            }
            return (Int(offsets), Int(lengths))
        }
        switch version {
        case 0, 1:
            (offsetSize, lengthSize) = try sizes(at: start + 13)
            let addresses = start + 24 + (version == 1 ? 4 : 0)
            guard let base = view.integer(at: addresses, size: offsetSize) else { throw invalid("truncated") }
            // The root group's symbol table entry follows four addresses: base, free space, end of file, driver.
            let rootEntry = addresses + 4 * offsetSize
            guard let root = view.integer(at: rootEntry + offsetSize, size: offsetSize) else { throw invalid("truncated") }
            baseAddress = Int(clamping: base)
            rootAddress = Int(clamping: root)
        case 2, 3:
            (offsetSize, lengthSize) = try sizes(at: start + 9)
            // Base, superblock extension, end of file, root object header, then the checksum of all before it.
            guard let base = view.integer(at: start + 12, size: offsetSize),
                  let root = view.integer(at: start + 12 + 3 * offsetSize, size: offsetSize) else { throw invalid("truncated") }
            baseAddress = Int(clamping: base)
            rootAddress = Int(clamping: root)
            try verifyChecksum(of: start..<start + 12 + 4 * offsetSize, address: start, "the superblock")
        default:
            throw HDF5Error.unsupported(file: source, feature: "superblock version \(version)")
        }
        guard baseAddress < bytes.count else { throw invalid("base address \(baseAddress) beyond the file") }
    }

    /// Returns the names of the members of the group at `path` (`"layers/lstm/cell/vars"`, `""` for the root),
    /// sorted by their UTF-8 bytes.
    ///
    /// - Throws: ``HDF5Error/notFound(file:path:)`` when there is no group there, else as ``HDF5File``.
    package func memberNames(ofGroupAt path: String) throws -> [String] {
        let header = try objectHeader(at: try address(of: path), path: path)
        return try links(of: header, path: path).map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Returns the datasets that are members of the group at `path`, by name, reading the group once.
    ///
    /// - Throws: ``HDF5Error/notFound(file:path:)`` when there is no group there, else as ``dataset(at:)``.
    package func datasets(inGroupAt path: String) throws -> [String: HDF5Dataset] {
        let header = try objectHeader(at: try address(of: path), path: path)
        var result: [String: HDF5Dataset] = [:]
        for link in try links(of: header, path: path) {
            let member = "\(path)/\(link.name)"
            result[link.name] = try readDataset(try objectHeader(at: link.address, path: member), path: member)
        }
        return result
    }

    /// Whether an object (group or dataset) exists at `path`; malformed files still throw.
    package func contains(_ path: String) throws -> Bool {
        do {
            _ = try address(of: path)
            return true
        } catch HDF5Error.notFound {
            return false
        }
    }

    /// Returns the dataset at `path` with its shape and elements.
    package func dataset(at path: String) throws -> HDF5Dataset {
        try readDataset(try objectHeader(at: try address(of: path), path: path), path: path)
    }

    /// The file-relative address of the object at `path`, following hard links from the root.
    func address(of path: String) throws -> Int {
        var address = rootAddress
        var walked: [Substring] = []
        for component in path.split(separator: "/") {
            let here = walked.joined(separator: "/")
            let header = try objectHeader(at: address, path: here)
            guard let link = try links(of: header, path: here).first(where: { $0.name == component }) else {
                throw HDF5Error.notFound(file: source, path: (walked + [component]).joined(separator: "/"))
            }
            walked.append(component)
            address = link.address
        }
        return address
    }

    /// Returns the absolute position of a file address, checking that `count` bytes there lie in the file.
    func position(of address: Int, count: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (absolute, overflow) = baseAddress.addingReportingOverflow(address)
        guard !overflow, address >= 0, bytes.contains(offset: absolute, count: count) else {
            throw HDF5Error.invalid(file: source, address: address,
                                    reason: "\(what()) (\(count) bytes) lies outside the file of \(bytes.count) bytes")
        }
        return absolute
    }

    /// Reads an address field; `nil` for the undefined address (all bits set).
    func readAddress(at position: Int) throws -> Int? {
        guard let value = bytes.integer(at: position, size: offsetSize) else {
            throw HDF5Error.invalid(file: source, address: position, reason: "an address runs past the end of the file")
        }
        if value == (offsetSize == 8 ? UInt64.max : (1 << UInt64(8 * offsetSize)) - 1) { return nil }
        return Int(clamping: value)
    }

    /// Reads a length field.
    func readLength(at position: Int) throws -> Int {
        guard let value = bytes.integer(at: position, size: lengthSize) else {
            throw HDF5Error.invalid(file: source, address: position, reason: "a length runs past the end of the file")
        }
        return Int(clamping: value)
    }
}

/// A problem reading an HDF5 file; every case names the file.
package enum HDF5Error: Error, CustomStringConvertible, Equatable {
    /// No HDF5 signature at 0, 512, 1024, ...: not an HDF5 file.
    case notHDF5(file: String)
    /// A structure at `address` is malformed or points outside the file.
    case invalid(file: String, address: Int, reason: String)
    /// The file uses a feature outside the supported subset; `feature` says what was found.
    case unsupported(file: String, feature: String)
    /// No object at `path`.
    case notFound(file: String, path: String)

    /// A sentence naming the file and the problem.
    package var description: String {
        switch self {
        case .notHDF5(let file): "\(file): not an HDF5 file (no signature)"
        case let .invalid(file, address, reason): "\(file): invalid HDF5 structure at address \(address): \(reason)"
        case let .unsupported(file, feature):
            "\(file): \(feature) is outside the HDF5 subset Unroll reads (contiguous or compact datasets of "
                + "little-endian numbers, symbol-table or compact groups)"
        case let .notFound(file, path): "\(file): no HDF5 object at '\(path)'"
        }
    }
}

/// A dataset read from an HDF5 file: its shape and elements converted to `Double`.
package struct HDF5Dataset: Equatable, Sendable {
    /// The dimensions, outermost first (`[]` for a scalar).
    package var shape: [Int]
    /// The elements in row-major order.
    package var values: [Double]
}
