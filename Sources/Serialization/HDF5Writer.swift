// Writing the subset of HDF5 that h5py's default settings produce and Keras reads: superblock version 0,
// version 1 object headers, groups as symbol tables (a version 1 B-tree over symbol table nodes, names in a
// local heap), and contiguous little-endian float32 (and int64) datasets.

/// A group or dataset to write with ``HDF5File/encode(_:)``.
package indirect enum HDF5Node {
    /// A group of named members (names unique; any order, they are stored sorted).
    case group([(name: String, node: HDF5Node)])
    /// A float32 dataset of `shape` holding `values` in row-major order (`[]` for a scalar).
    case dataset(shape: [Int], values: [Float])
    /// A signed 64-bit integer dataset (Keras' optimizer `iterations` is a scalar of these).
    case integerDataset(shape: [Int], values: [Int64])
}

extension HDF5File {
    /// Symbol table node capacity is 2·leafK entries, a B-tree node's 2·internalK children: the library defaults.
    private static let leafK = 4
    private static let internalK = 16
    /// Members one group can have in this writer's single-level B-tree.
    package static let maximumGroupMembers = 2 * leafK * 2 * internalK

    /// Returns the bytes of an HDF5 file whose root group holds `members`.
    ///
    /// - Throws: ``HDF5Error/unsupported(file:feature:)`` for a group of more than ``maximumGroupMembers``
    ///   members, an empty or repeated name, a name with `/`, or a dataset whose values do not fill its shape.
    package static func encode(_ members: [(name: String, node: HDF5Node)]) throws -> [UInt8] {
        var writer = HDF5Writer()
        writer.output = [UInt8](repeating: 0, count: HDF5Writer.superblockSize)
        let root = try writer.writeGroup(members, path: "")
        writer.align()
        writer.writeSuperblock(root: root)
        return writer.output
    }
}

private struct HDF5Writer {
    static let superblockSize = 96
    static let undefined = UInt64.max
    var output: [UInt8] = []

    mutating func align() {
        output += [UInt8](repeating: 0, count: (8 - output.count % 8) % 8)
    }

    mutating func writeSuperblock(root: (header: Int, tree: Int, heap: Int)) {
        var block: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        block += [0, 0, 0, 0, 0, 8, 8, 0]              // versions, sizes of offsets and lengths
        block.appendLittleEndian(UInt16(4))            // group leaf node K
        block.appendLittleEndian(UInt16(16))           // group internal node K
        block.appendLittleEndian(UInt32(0))            // consistency flags
        block.appendLittleEndian(UInt64(0))            // base address
        block.appendLittleEndian(Self.undefined)       // free-space info
        block.appendLittleEndian(UInt64(output.count)) // end of file
        block.appendLittleEndian(Self.undefined)       // driver info
        block.appendLittleEndian(UInt64(0))            // root entry: name offset
        block.appendLittleEndian(UInt64(root.header))
        block.appendLittleEndian(UInt32(1))            // cache type 1: the scratch pad holds the symbol table
        block.appendLittleEndian(UInt32(0))
        block.appendLittleEndian(UInt64(root.tree))
        block.appendLittleEndian(UInt64(root.heap))
        output.replaceSubrange(0..<Self.superblockSize, with: block)
    }

    /// Writes a group's members, then its heap, nodes and object header; returns their addresses.
    mutating func writeGroup(_ members: [(name: String, node: HDF5Node)], path: String) throws -> (header: Int, tree: Int, heap: Int) {
        let sorted = members.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        guard sorted.count <= HDF5File.maximumGroupMembers else {
            throw HDF5Error.unsupported(file: path, feature: "a group of \(sorted.count) members (at most "
                                        + "\(HDF5File.maximumGroupMembers) are written)")
        }
        for (index, member) in sorted.enumerated() {
            guard !member.name.isEmpty, !member.name.contains("/"), !member.name.utf8.contains(0),
                  index == 0 || sorted[index - 1].name != member.name else {
                throw HDF5Error.unsupported(file: path, feature: "the member name '\(member.name)' (empty, repeated or with '/')")
            }
        }
        var addresses: [Int] = []
        for member in sorted {
            let childPath = path.isEmpty ? member.name : "\(path)/\(member.name)"
            switch member.node {
            case .group(let children): addresses.append(try writeGroup(children, path: childPath).header)
            case .dataset(let shape, let values):
                addresses.append(try writeDataset(shape: shape, count: values.count, path: childPath, datatype: Self.float32) {
                    for value in values { $0.appendLittleEndian(value.bitPattern) }
                })
            case .integerDataset(let shape, let values):
                addresses.append(try writeDataset(shape: shape, count: values.count, path: childPath, datatype: Self.int64) {
                    for value in values { $0.appendLittleEndian(value) }
                })
            }
        }

        // The local heap's data: the empty name at offset 0, then each name null-terminated, 8-byte aligned.
        var names: [UInt8] = [UInt8](repeating: 0, count: 8)
        var nameOffsets: [Int] = []
        for member in sorted {
            nameOffsets.append(names.count)
            names += Array(member.name.utf8) + [0]
            names += [UInt8](repeating: 0, count: (8 - names.count % 8) % 8)
        }
        align()
        let heapData = output.count
        output += names
        let heap = output.count
        output += Array("HEAP".utf8) + [0, 0, 0, 0]
        output.appendLittleEndian(UInt64(names.count))
        output.appendLittleEndian(UInt64(1))           // free list head: none
        output.appendLittleEndian(UInt64(heapData))

        // Symbol table nodes of up to 2·leafK entries each, always written at full size as readers expect.
        let perNode = 2 * 4
        var nodes: [(address: Int, lastName: Int)] = []
        for start in stride(from: 0, to: sorted.count, by: perNode) {
            let end = min(start + perNode, sorted.count)
            let node = output.count
            output += Array("SNOD".utf8) + [1, 0]
            output.appendLittleEndian(UInt16(end - start))
            for index in start..<end {
                output.appendLittleEndian(UInt64(nameOffsets[index]))
                output.appendLittleEndian(UInt64(addresses[index]))
                output += [UInt8](repeating: 0, count: 24)          // cache type 0, reserved, scratch pad
            }
            output += [UInt8](repeating: 0, count: (perNode - (end - start)) * 40)
            nodes.append((node, nameOffsets[end - 1]))
        }

        // One leaf-level B-tree node: key 0 is the empty name, key i+1 the last name in child i.
        let tree = output.count
        output += Array("TREE".utf8) + [0, 0]
        output.appendLittleEndian(UInt16(nodes.count))
        output.appendLittleEndian(Self.undefined)
        output.appendLittleEndian(Self.undefined)
        output.appendLittleEndian(UInt64(0))
        for node in nodes {
            output.appendLittleEndian(UInt64(node.address))
            output.appendLittleEndian(UInt64(node.lastName))
        }
        output += [UInt8](repeating: 0, count: (2 * 16 - nodes.count) * 16)

        var message: [UInt8] = []
        message.appendLittleEndian(UInt64(tree))
        message.appendLittleEndian(UInt64(heap))
        let header = writeObjectHeader([(0x11, message)])
        return (header, tree, heap)
    }

    /// Class 1 version 1; little-endian, mantissa normalization "implied" (bits 4-5 = 2), sign at bit 31; then the
    /// IEEE single layout: offset 0, precision 32, exponent at 23 of 8 bits, mantissa at 0 of 23, bias 127.
    static let float32: (size: Int, message: [UInt8]) = (4, [0x11, 0x20, 31, 0, 4, 0, 0, 0, 0, 0, 32, 0, 23, 8, 0, 23, 127, 0, 0, 0])
    /// Class 0 version 1; little-endian, signed (bit 3); offset 0, precision 64.
    static let int64: (size: Int, message: [UInt8]) = (8, [0x10, 0x08, 0, 0, 8, 0, 0, 0, 0, 0, 64, 0])

    mutating func writeDataset(shape: [Int], count: Int, path: String, datatype: (size: Int, message: [UInt8]),
                               elements: (inout [UInt8]) -> Void) throws -> Int {
        guard shape.count <= HDF5File.maximumRank, shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == count else {
            throw HDF5Error.unsupported(file: path, feature: "a dataset of shape \(shape) with \(count) values")
        }
        align()
        let data = output.count
        output.reserveCapacity(output.count + datatype.size * count)
        elements(&output)

        var dataspace: [UInt8] = [1, UInt8(shape.count), 0, 0, 0, 0, 0, 0]
        for dimension in shape { dataspace.appendLittleEndian(UInt64(dimension)) }
        // Fill value version 2: allocated late, written if set, no fill value defined.
        let fillValue: [UInt8] = [2, 2, 2, 0]
        var layout: [UInt8] = [3, 1]
        layout.appendLittleEndian(UInt64(data))
        layout.appendLittleEndian(UInt64(datatype.size * count))
        return writeObjectHeader([(0x01, dataspace), (0x03, datatype.message), (0x05, fillValue), (0x08, layout)])
    }

    /// Writes a version 1 object header holding `messages`, each body padded to 8 bytes; returns its address.
    mutating func writeObjectHeader(_ messages: [(type: UInt16, body: [UInt8])]) -> Int {
        align()
        let address = output.count
        let padded = messages.map { $0.body + [UInt8](repeating: 0, count: (8 - $0.body.count % 8) % 8) }
        output += [1, 0]
        output.appendLittleEndian(UInt16(messages.count))
        output.appendLittleEndian(UInt32(1))                                   // reference count
        output.appendLittleEndian(UInt32(padded.reduce(0) { $0 + 8 + $1.count }))
        output += [0, 0, 0, 0]                                                 // to the 8-byte boundary
        for (message, body) in zip(messages, padded) {
            output.appendLittleEndian(message.type)
            output.appendLittleEndian(UInt16(body.count))
            output += [0, 0, 0, 0]                                             // flags, reserved
            output += body
        }
        return address
    }
}
