// Datasets (specification IV.A.2.b dataspace, IV.A.2.d datatype, IV.A.2.i data layout): shape, element type
// and where the elements are, each checked before a single element is read.

/// How elements are stored: a little-endian float or integer of `size` bytes.
enum HDF5ElementType: Equatable {
    case float(size: Int)
    case integer(size: Int, isSigned: Bool)

    var size: Int {
        switch self {
        case .float(let size), .integer(let size, _): size
        }
    }
}

extension HDF5File {
    /// The most dimensions a dataspace may have (the specification's own limit).
    static let maximumRank = 32

    func readDataset(_ header: HDF5ObjectHeader, path: String) throws -> HDF5Dataset {
        func invalid(_ reason: String) -> HDF5Error {
            .invalid(file: source, address: header.address, reason: "dataset '\(path)': \(reason)")
        }
        func required(_ type: UInt16, _ name: String) throws -> HDF5Message {
            guard let message = header.messages(ofType: type).first else {
                if header.messages(ofType: HDF5MessageType.symbolTable).first != nil
                    || !header.messages(ofType: HDF5MessageType.link).isEmpty {
                    throw HDF5Error.notFound(file: source, path: path + " (a group, not a dataset)")
                }
                throw invalid("no \(name) message")
            }
            guard !message.isShared else {
                throw HDF5Error.unsupported(file: source, feature: "a shared \(name) message in dataset '\(path)'")
            }
            return message
        }
        let shape = try readDataspace(try required(HDF5MessageType.dataspace, "dataspace"), invalid: invalid)
        let elementType = try readDatatype(try required(HDF5MessageType.datatype, "datatype"), path: path, invalid: invalid)
        if header.messages(ofType: HDF5MessageType.filterPipeline).first != nil {
            throw HDF5Error.unsupported(file: source, feature: "a filter pipeline (compression) on dataset '\(path)'")
        }
        var count = 1
        for dimension in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= bytes.count else { throw invalid("shape \(shape) holds more elements than the file has bytes") }
            count = product
        }
        let byteCount = count * elementType.size
        let data = try readLayout(try required(HDF5MessageType.dataLayout, "data layout"), byteCount: byteCount,
                                  path: path, invalid: invalid)
        // The range was checked by readLayout; unaligned loads in one pass keep large weights fast.
        let values = bytes.bytes.withUnsafeBytes { raw -> [Double] in
            let elements = UnsafeRawBufferPointer(rebasing: raw[data..<data + byteCount])
            func load<Stored: FixedWidthInteger>(_: Stored.Type, _ convert: (Stored) -> Double) -> [Double] {
                (0..<count).map { convert(Stored(littleEndian: elements.loadUnaligned(fromByteOffset: $0 * Stored.bitWidth / 8,
                                                                                      as: Stored.self))) }
            }
            switch elementType {
            case .float(4): return load(UInt32.self) { Double(Float(bitPattern: $0)) }
            case .float: return load(UInt64.self) { Double(bitPattern: $0) }
            case .integer(1, true): return load(Int8.self) { Double($0) }
            case .integer(2, true): return load(Int16.self) { Double($0) }
            case .integer(4, true): return load(Int32.self) { Double($0) }
            case .integer(_, true): return load(Int64.self) { Double($0) }
            case .integer(1, false): return load(UInt8.self) { Double($0) }
            case .integer(2, false): return load(UInt16.self) { Double($0) }
            case .integer(4, false): return load(UInt32.self) { Double($0) }
            case .integer: return load(UInt64.self) { Double($0) }
            }
        }
        return HDF5Dataset(shape: shape, values: values)
    }

    /// Reads a dataspace message: version 1 (rank, flags, 5 reserved bytes) or 2 (rank, flags, type), then the
    /// dimensions as lengths.
    private func readDataspace(_ message: HDF5Message, invalid: (String) -> HDF5Error) throws -> [Int] {
        guard let version = bytes.uint8(at: message.position), let rank = bytes.uint8(at: message.position + 1) else {
            throw invalid("truncated dataspace")
        }
        let dimensions: Int
        switch version {
        case 1: dimensions = message.position + 8
        case 2:
            guard let type = bytes.uint8(at: message.position + 3) else { throw invalid("truncated dataspace") }
            if type == 2 { throw HDF5Error.unsupported(file: source, feature: "a null dataspace") }
            dimensions = message.position + 4
        default: throw HDF5Error.unsupported(file: source, feature: "dataspace message version \(version)")
        }
        guard Int(rank) <= Self.maximumRank, dimensions + Int(rank) * lengthSize <= message.position + message.size else {
            throw invalid("a dataspace of rank \(rank) does not fit its message")
        }
        return try (0..<Int(rank)).map { try readLength(at: dimensions + $0 * lengthSize) }
    }

    /// Reads a datatype message: class and version in byte 0, three bytes of class bits, the size, then the
    /// class's properties. Only little-endian IEEE floats and integers are accepted.
    private func readDatatype(_ message: HDF5Message, path: String, invalid: (String) -> HDF5Error) throws -> HDF5ElementType {
        guard message.size >= 8, let classAndVersion = bytes.uint8(at: message.position),
              let bits = bytes.uint8(at: message.position + 1), let size = bytes.uint32(at: message.position + 4) else {
            throw invalid("truncated datatype")
        }
        let typeClass = classAndVersion & 0x0F
        let names = ["integer", "float", "time", "string", "bitfield", "opaque", "compound", "reference", "enum",
                     "variable-length", "array"]
        let className = Int(typeClass) < names.count ? names[Int(typeClass)] : "class \(typeClass)"
        let isBigEndian = bits & 0x01 != 0
        switch typeClass {
        case 0 where [1, 2, 4, 8].contains(size) && !isBigEndian:
            return .integer(size: Int(size), isSigned: bits & 0x08 != 0)
        case 1 where !isBigEndian && bits & 0x40 == 0 && message.size >= 20:
            // Properties: bit offset, precision, exponent location and size, mantissa location and size, bias.
            let properties = message.position + 8
            guard let offset = bytes.uint16(at: properties), let precision = bytes.uint16(at: properties + 2),
                  let exponentLocation = bytes.uint8(at: properties + 4), let exponentSize = bytes.uint8(at: properties + 5),
                  let mantissaLocation = bytes.uint8(at: properties + 6), let mantissaSize = bytes.uint8(at: properties + 7),
                  let bias = bytes.uint32(at: properties + 8) else { throw invalid("truncated datatype") }
            let layout = [Int(size), Int(offset), Int(precision), Int(exponentLocation), Int(exponentSize),
                          Int(mantissaLocation), Int(mantissaSize), Int(bias)]
            if layout == [4, 0, 32, 23, 8, 0, 23, 127] { return .float(size: 4) }
            if layout == [8, 0, 64, 52, 11, 0, 52, 1023] { return .float(size: 8) }
            throw HDF5Error.unsupported(file: source, feature: "a \(8 * Int(size))-bit float that is not IEEE single or "
                                        + "double precision in dataset '\(path)'")
        default:
            let order = isBigEndian ? "big-endian " : ""
            throw HDF5Error.unsupported(file: source, feature: "\(order)\(className) elements of \(size) bytes in dataset '\(path)'")
        }
    }

    /// Reads a data layout message of version 3 or 4 and returns the absolute position of `byteCount` bytes of
    /// elements: compact (stored in the message) or contiguous (an address and a size).
    private func readLayout(_ message: HDF5Message, byteCount: Int, path: String,
                            invalid: (String) -> HDF5Error) throws -> Int {
        guard let version = bytes.uint8(at: message.position), let layoutClass = bytes.uint8(at: message.position + 1) else {
            throw invalid("truncated data layout")
        }
        guard version == 3 || version == 4 else {
            throw HDF5Error.unsupported(file: source, feature: "data layout message version \(version)")
        }
        switch layoutClass {
        case 0:
            guard let size = bytes.uint16(at: message.position + 2), Int(size) == byteCount,
                  message.position + 4 + byteCount <= message.position + message.size else {
                throw invalid("compact data does not hold the \(byteCount) bytes its shape and type need")
            }
            return message.position + 4
        case 1:
            guard message.size >= 2 + offsetSize + lengthSize else { throw invalid("truncated data layout") }
            let size = try readLength(at: message.position + 2 + offsetSize)
            guard size == byteCount else {
                throw invalid("contiguous storage of \(size) bytes where the shape and type need \(byteCount)")
            }
            guard let address = try readAddress(at: message.position + 2) else {
                // Never written: HDF5 reads such a dataset as its fill value, zero by default.
                guard byteCount == 0 else { throw invalid("contiguous data was never written (undefined address)") }
                return 0
            }
            return try position(of: address, count: byteCount, "the elements of dataset '\(path)'")
        case 2: throw HDF5Error.unsupported(file: source, feature: "chunked storage of dataset '\(path)'")
        case 3: throw HDF5Error.unsupported(file: source, feature: "virtual storage of dataset '\(path)'")
        default: throw invalid("unknown layout class \(layoutClass)")
        }
    }
}
