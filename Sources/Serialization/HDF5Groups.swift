// Groups (specification sections III.A.1, III.B, III.C and IV.A.2.g/l): the links from a group to its members,
// stored either as a symbol table (a version 1 B-tree whose leaves are symbol table nodes, names in a local
// heap) or as link messages in the group's own object header.

/// A hard link from a group to a member object.
struct HDF5Link {
    var name: String
    /// The member's object header address.
    var address: Int
}

extension HDF5File {
    /// The deepest B-tree the reader follows; a group of millions of members needs fewer than 8 levels.
    static let maximumTreeDepth = 32

    /// Returns the links of a group's object header, from its symbol table or its link messages.
    func links(of header: HDF5ObjectHeader, path: String) throws -> [HDF5Link] {
        let name = path.isEmpty ? "/" : path
        if let table = header.messages(ofType: HDF5MessageType.symbolTable).first {
            guard let tree = try readAddress(at: table.position),
                  let heap = try readAddress(at: table.position + offsetSize), table.size >= 2 * offsetSize else {
                throw HDF5Error.invalid(file: source, address: header.address, reason: "'\(name)': symbol table message without addresses")
            }
            let names = try localHeap(at: heap, group: name)
            var links: [HDF5Link] = []
            var visited = Set<Int>()
            try collectSymbols(node: tree, depth: 0, names: names, group: name, visited: &visited, into: &links)
            return links
        }
        for info in header.messages(ofType: HDF5MessageType.linkInfo) {
            // Byte 0 version, byte 1 flags (bit 0: a maximum creation index follows), then the fractal heap address.
            guard let flags = bytes.uint8(at: info.position + 1) else { continue }
            let heapAddress = try readAddress(at: info.position + 2 + (flags & 0x01 != 0 ? 8 : 0))
            if heapAddress != nil {
                throw HDF5Error.unsupported(file: source, feature: "dense link storage (a fractal heap) in group '\(name)'")
            }
        }
        let messages = header.messages(ofType: HDF5MessageType.link)
        guard !messages.isEmpty || !header.messages(ofType: HDF5MessageType.linkInfo).isEmpty else {
            throw HDF5Error.notFound(file: source, path: path + " (a dataset, not a group)")
        }
        return try messages.map { try readLink($0, group: name) }
    }

    /// Reads a link message (IV.A.2.g): version 1, flags, optional type, creation order and charset, the name's
    /// length in 1, 2, 4 or 8 bytes, the name, then for a hard link the target's address.
    private func readLink(_ message: HDF5Message, group: String) throws -> HDF5Link {
        func invalid(_ reason: String) -> HDF5Error {
            .invalid(file: source, address: message.position, reason: "link message in '\(group)': \(reason)")
        }
        let end = message.position + message.size
        guard let version = bytes.uint8(at: message.position), let flags = bytes.uint8(at: message.position + 1) else {
            throw invalid("truncated")
        }
        guard version == 1 else { throw HDF5Error.unsupported(file: source, feature: "link message version \(version)") }
        var cursor = message.position + 2
        var linkType: UInt8 = 0
        if flags & 0x08 != 0 {
            guard let type = bytes.uint8(at: cursor) else { throw invalid("truncated") }
            linkType = type
            cursor += 1
        }
        if flags & 0x04 != 0 { cursor += 8 }
        if flags & 0x10 != 0 { cursor += 1 }
        let lengthSize = 1 << Int(flags & 0x03)
        guard let length = bytes.integer(at: cursor, size: lengthSize), length <= UInt64(end),
              let nameBytes = bytes.slice(at: cursor + lengthSize, count: Int(length)),
              cursor + lengthSize + Int(length) <= end else { throw invalid("the name runs past the message") }
        let name = String(decoding: nameBytes, as: UTF8.self)
        cursor += lengthSize + Int(length)
        guard linkType == 0 else {
            let kind = linkType == 1 ? "soft link" : linkType == 64 ? "external link" : "link of type \(linkType)"
            throw HDF5Error.unsupported(file: source, feature: "\(kind) '\(name)' in group '\(group)'")
        }
        guard cursor + offsetSize <= end, let address = try readAddress(at: cursor) else {
            throw invalid("hard link '\(name)' has no address")
        }
        return HDF5Link(name: name, address: address)
    }

    /// Returns the data segment of the local heap at `address` (III.D): "HEAP", version 0, 3 reserved bytes,
    /// the segment's size, the free list's head, the segment's address.
    private func localHeap(at address: Int, group: String) throws -> ArraySlice<UInt8> {
        let start = try position(of: address, count: 8 + 2 * lengthSize + offsetSize, "the local heap of '\(group)'")
        guard bytes.matches("HEAP", at: start), bytes.uint8(at: start + 4) == 0 else {
            throw HDF5Error.invalid(file: source, address: address, reason: "expected the local heap of '\(group)'")
        }
        let size = try readLength(at: start + 8)
        guard let segment = try readAddress(at: start + 8 + 2 * lengthSize) else {
            throw HDF5Error.invalid(file: source, address: address, reason: "local heap of '\(group)' has no data segment")
        }
        let segmentStart = try position(of: segment, count: size, "the local heap data of '\(group)'")
        return bytes.bytes[segmentStart..<segmentStart + size]
    }

    /// Appends the symbols under a group B-tree node (III.A.1: "TREE", type 0, level, entries used, two
    /// siblings, then keys and children alternating) or, at level 0, under each symbol table node it points to.
    private func collectSymbols(node address: Int, depth: Int, names: ArraySlice<UInt8>, group: String,
                                visited: inout Set<Int>, into links: inout [HDF5Link]) throws {
        func invalid(_ reason: String) -> HDF5Error {
            .invalid(file: source, address: address, reason: "B-tree of group '\(group)': \(reason)")
        }
        guard depth < Self.maximumTreeDepth, visited.insert(address).inserted else {
            throw invalid("deeper than \(Self.maximumTreeDepth) levels, or a node reached twice")
        }
        let header = 8 + 2 * offsetSize
        let start = try position(of: address, count: header, "a B-tree node of group '\(group)'")
        guard bytes.matches("TREE", at: start) else { throw invalid("no TREE signature") }
        guard bytes.uint8(at: start + 4) == 0, let level = bytes.uint8(at: start + 5),
              let entries = bytes.uint16(at: start + 6) else { throw invalid("not a group node") }
        let stride = lengthSize + offsetSize
        _ = try position(of: address, count: header + Int(entries) * stride + lengthSize, "a B-tree node of group '\(group)'")
        for index in 0..<Int(entries) {
            guard let child = try readAddress(at: start + header + index * stride + lengthSize) else {
                throw invalid("child \(index) has the undefined address")
            }
            if level > 0 {
                try collectSymbols(node: child, depth: depth + 1, names: names, group: group, visited: &visited, into: &links)
            } else {
                guard visited.insert(child).inserted else { throw invalid("a symbol table node reached twice") }
                try collectSymbolTableNode(at: child, names: names, group: group, into: &links)
            }
        }
    }

    /// Appends the entries of a symbol table node (III.B: "SNOD", version 1, reserved, symbol count, then
    /// entries of name offset, object header address, cache type, reserved and a 16-byte scratch pad).
    private func collectSymbolTableNode(at address: Int, names: ArraySlice<UInt8>, group: String,
                                        into links: inout [HDF5Link]) throws {
        func invalid(_ reason: String) -> HDF5Error {
            .invalid(file: source, address: address, reason: "symbol table node of group '\(group)': \(reason)")
        }
        let start = try position(of: address, count: 8, "a symbol table node of group '\(group)'")
        guard bytes.matches("SNOD", at: start), bytes.uint8(at: start + 4) == 1,
              let count = bytes.uint16(at: start + 6) else { throw invalid("no SNOD signature") }
        let entrySize = 2 * offsetSize + 24
        _ = try position(of: address, count: 8 + Int(count) * entrySize, "the entries of a symbol table node")
        for index in 0..<Int(count) {
            let entry = start + 8 + index * entrySize
            guard let nameOffset = bytes.integer(at: entry, size: offsetSize).map({ Int(clamping: $0) }) else {
                throw invalid("truncated")
            }
            guard let target = try readAddress(at: entry + offsetSize) else { throw invalid("entry \(index) has no address") }
            guard nameOffset < names.count else { throw invalid("entry \(index)'s name lies outside the local heap") }
            let from = names.startIndex + nameOffset
            guard let terminator = names[from...].firstIndex(of: 0) else { throw invalid("entry \(index)'s name is unterminated") }
            links.append(HDF5Link(name: String(decoding: names[from..<terminator], as: UTF8.self), address: target))
        }
    }
}
