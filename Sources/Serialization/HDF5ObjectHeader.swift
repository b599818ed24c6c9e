// Object headers (specification section IV.A): the messages that describe a group or dataset, gathered
// from the first chunk and every continuation block.

/// One header message: its type and where its body lies in the file.
struct HDF5Message {
    var type: UInt16
    /// The absolute position of the message body.
    var position: Int
    var size: Int
    var isShared: Bool
}

/// The messages of one object header.
struct HDF5ObjectHeader {
    /// The object's file address.
    var address: Int
    var messages: [HDF5Message]

    func messages(ofType type: UInt16) -> [HDF5Message] { messages.filter { $0.type == type } }
}

enum HDF5MessageType {
    static let dataspace: UInt16 = 0x0001
    static let linkInfo: UInt16 = 0x0002
    static let datatype: UInt16 = 0x0003
    static let link: UInt16 = 0x0006
    static let dataLayout: UInt16 = 0x0008
    static let filterPipeline: UInt16 = 0x000B
    static let continuation: UInt16 = 0x0010
    static let symbolTable: UInt16 = 0x0011
}

extension HDF5File {
    /// The most header chunks (first plus continuations) one object may have; real files have a few.
    static let maximumHeaderChunks = 256

    /// Reads the object header at the file address `address`; `path` names the object in errors.
    func objectHeader(at address: Int, path: String) throws -> HDF5ObjectHeader {
        let what = "the object header of '\(path.isEmpty ? "/" : path)'"
        let start = try position(of: address, count: 4, what)
        func invalid(_ reason: String) -> HDF5Error { .invalid(file: source, address: address, reason: "\(what): \(reason)") }
        var messages: [HDF5Message] = []
        // Continuation blocks still to read: (absolute position, length).
        var pending: [(Int, Int)] = []
        var visited = Set<Int>()

        if bytes.matches("OHDR", at: start) {
            guard let version = bytes.uint8(at: start + 4), let flags = bytes.uint8(at: start + 5) else {
                throw invalid("truncated")
            }
            guard version == 2 else { throw HDF5Error.unsupported(file: source, feature: "object header version \(version) after OHDR") }
            var cursor = start + 6
            if flags & 0x20 != 0 { cursor += 16 }      // access, modification, change and birth times
            if flags & 0x10 != 0 { cursor += 4 }       // attribute storage phase change values
            let sizeBytes = 1 << Int(flags & 0x03)
            guard let chunkSize = bytes.integer(at: cursor, size: sizeBytes) else { throw invalid("truncated") }
            cursor += sizeBytes
            let hasCreationOrder = flags & 0x04 != 0
            guard chunkSize < UInt64(bytes.count), bytes.contains(offset: cursor, count: Int(chunkSize) + 4) else {
                throw invalid("its first chunk of \(chunkSize) bytes runs past the end of the file")
            }
            try verifyChecksum(of: start..<cursor + Int(chunkSize), address: address, what)
            try readVersion2Messages(from: cursor, count: Int(chunkSize), creationOrder: hasCreationOrder,
                                     into: &messages, continuations: &pending, invalid: invalid)
            var chunks = 1
            while let (chunk, length) = pending.popLast() {
                chunks += 1
                guard chunks <= Self.maximumHeaderChunks, visited.insert(chunk).inserted else {
                    throw invalid("more than \(Self.maximumHeaderChunks) header chunks, or a cycle of continuations")
                }
                guard length >= 8, bytes.matches("OCHK", at: chunk) else {
                    throw invalid("a continuation block lacks its OCHK signature")
                }
                try verifyChecksum(of: chunk..<chunk + length - 4, address: address, "a continuation block of \(what)")
                try readVersion2Messages(from: chunk + 4, count: length - 8, creationOrder: hasCreationOrder,
                                         into: &messages, continuations: &pending, invalid: invalid)
            }
        } else {
            guard let version = bytes.uint8(at: start) else { throw invalid("truncated") }
            guard version == 1 else {
                throw HDF5Error.unsupported(file: source, feature: "object header version \(version)")
            }
            guard let messageCount = bytes.uint16(at: start + 2), let size = bytes.uint32(at: start + 8),
                  bytes.contains(offset: start + 16, count: Int(size)) else {
                throw invalid("its first chunk runs past the end of the file")
            }
            pending = [(start + 16, Int(size))]
            var chunks = 0
            while let (chunk, length) = pending.popLast() {
                chunks += 1
                guard chunks <= Self.maximumHeaderChunks, visited.insert(chunk).inserted else {
                    throw invalid("more than \(Self.maximumHeaderChunks) header chunks, or a cycle of continuations")
                }
                var cursor = chunk
                // Version 1 messages are 8-byte aligned: an 8-byte prefix, then the body padded to 8 bytes.
                while cursor + 8 <= chunk + length {
                    guard let type = bytes.uint16(at: cursor), let size = bytes.uint16(at: cursor + 2),
                          let flags = bytes.uint8(at: cursor + 4) else { throw invalid("truncated message") }
                    let body = cursor + 8
                    guard body + Int(size) <= chunk + length else {
                        throw invalid("message of type \(type) and \(size) bytes overruns its chunk")
                    }
                    try append(type: UInt16(type), body: body, size: Int(size), flags: flags, to: &messages,
                               continuations: &pending, invalid: invalid)
                    cursor = body + (Int(size) + 7) / 8 * 8
                }
            }
            // The count covers every chunk and the continuation messages; fewer means the header was cut.
            let found = messages.count + visited.count - 1
            guard found >= Int(messageCount) else {
                throw invalid("it declares \(messageCount) messages but holds \(found)")
            }
        }
        return HDF5ObjectHeader(address: address, messages: messages)
    }

    private func readVersion2Messages(from start: Int, count: Int, creationOrder: Bool, into messages: inout [HDF5Message],
                                      continuations: inout [(Int, Int)], invalid: (String) -> HDF5Error) throws {
        let prefix = creationOrder ? 6 : 4
        var cursor = start
        let end = start + count
        // What is left when less than a message prefix remains is a gap, which the specification allows.
        while cursor + prefix <= end {
            guard let type = bytes.uint8(at: cursor), let size = bytes.uint16(at: cursor + 1),
                  let flags = bytes.uint8(at: cursor + 3) else { throw invalid("truncated message") }
            let body = cursor + prefix
            guard body + Int(size) <= end else { throw invalid("message of type \(type) and \(size) bytes overruns its chunk") }
            try append(type: UInt16(type), body: body, size: Int(size), flags: flags, to: &messages,
                       continuations: &continuations, invalid: invalid)
            cursor = body + Int(size)
        }
    }

    private func append(type: UInt16, body: Int, size: Int, flags: UInt8, to messages: inout [HDF5Message],
                        continuations: inout [(Int, Int)], invalid: (String) -> HDF5Error) throws {
        if type == HDF5MessageType.continuation {
            guard let address = try readAddress(at: body) else { throw invalid("a continuation to the undefined address") }
            let length = try readLength(at: body + offsetSize)
            let chunk = try position(of: address, count: length, "a header continuation block")
            continuations.append((chunk, length))
            return
        }
        // Overlapping chunks could otherwise repeat the same bytes as messages without end.
        guard messages.count < 1 << 16 else { throw invalid("more than 65,536 header messages") }
        messages.append(HDF5Message(type: type, position: body, size: size, isShared: flags & 0x02 != 0))
    }
}
