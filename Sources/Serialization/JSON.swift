/// A JSON value: the one representation every Unroll file format that holds JSON reads and writes
/// (`.keras` configurations, `model.json`, safetensors headers, `--json` input).
///
/// ```swift
/// let config = try JSON.parse(Array(#"{"units": 4, "layers": [{"name": "lstm"}]}"#.utf8))
/// let units = try config.field("units").int()                       // 4
/// let name = try config.field("layers").elements()[0].field("name").string()
/// print(config.serialized())                                         // {"units":4,"layers":[{"name":"lstm"}]}
/// ```
/// Parsing follows RFC 8259 strictly (no comments, trailing commas, leading zeros, `NaN`, or invalid UTF-8),
/// rejects a repeated key in an object (``JSONError/duplicateKey(key:path:offset:line:column:)``, so a format
/// can say what the repetition means), keeps each number's literal text (``JSONNumber``), and bounds the input size and nesting depth so hostile text fails with a
/// ``JSONError`` (byte offset, line, column) instead of exhausting memory or the stack. Objects keep their keys
/// in the order written, so a file read and written again keeps its layout.
package enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    /// Every number: the nearest `Double`, and the text it was read from.
    case number(JSONNumber)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    /// Bounds on the text ``parse(_:limits:)`` accepts.
    package struct Limits: Sendable {
        /// The most bytes of text.
        package var maximumByteCount: Int
        /// The deepest nesting of arrays and objects.
        package var maximumDepth: Int

        /// Creates limits; the defaults fit any model configuration while keeping hostile input cheap.
        package init(maximumByteCount: Int = 64 << 20, maximumDepth: Int = 256) {
            self.maximumByteCount = maximumByteCount
            self.maximumDepth = maximumDepth
        }
    }

    /// Returns the value in UTF-8 JSON text.
    ///
    /// - Throws: ``JSONError/syntax(offset:line:column:message:)`` for text that is not one JSON value,
    ///   ``JSONError/duplicateKey(key:path:offset:line:column:)`` for an object that repeats a key,
    ///   ``JSONError/tooLarge(byteCount:limit:)`` beyond `limits`.
    package static func parse(_ bytes: some Collection<UInt8>, limits: Limits = Limits()) throws -> JSON {
        guard bytes.count <= limits.maximumByteCount else {
            throw JSONError.tooLarge(byteCount: bytes.count, limit: limits.maximumByteCount)
        }
        if let result = try bytes.withContiguousStorageIfAvailable({ buffer in
            var parser = JSONTextParser(bytes: buffer, maximumDepth: limits.maximumDepth)
            return try parser.parseDocument()
        }) {
            return result
        }
        return try parse(Array(bytes), limits: limits)
    }

    /// Returns the value in JSON text.
    package static func parse(_ text: String, limits: Limits = Limits()) throws -> JSON {
        try parse(Array(text.utf8), limits: limits)
    }
}

/// A JSON number: its value as the nearest `Double` (integers up to 2^53 exactly) and, when it was read from
/// text, the literal as written, so a format that needs exact integers (safetensors offsets above 2^53) or tells
/// `2` from `2.0` or `2e0` can ask for ``exactInteger``.
///
/// Two numbers are equal when their values are: `2`, `2.0` and `2e0` are the same number.
package struct JSONNumber: Equatable, Sendable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    /// The value, the nearest `Double` to the literal.
    package let value: Double
    /// The text the number was read from, or `nil` for a number made in code.
    package let literal: String?

    /// Creates a number made in code.
    package init(_ value: Double) {
        self.value = value
        literal = nil
    }

    /// Creates a number made in code from an integer.
    package init(_ value: some BinaryInteger) {
        self.init(Double(value))
    }

    /// Creates a number read as `literal`, whose nearest `Double` is `value`.
    init(literal: String, value: Double) {
        self.value = value
        self.literal = literal
    }

    /// Creates a number from an integer literal in code.
    package init(integerLiteral value: Int) {
        self.init(Double(value))
    }

    /// Creates a number from a floating-point literal in code.
    package init(floatLiteral value: Double) {
        self.init(value)
    }

    /// The number as an `Int`, when it is one exactly: read from text, a literal with neither fraction nor
    /// exponent (`8`, not `8.0` or `8e0`) that fits in `Int`, however far above 2^53; made in code, an integral
    /// value below 2^53 in magnitude.
    package var exactInteger: Int? {
        guard let literal else { return value.rounded() == value && abs(value) < 0x1p53 ? Int(value) : nil }
        guard literal.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") })
        else { return nil }
        return Int(literal)
    }

    package static func == (lhs: JSONNumber, rhs: JSONNumber) -> Bool { lhs.value == rhs.value }
}

/// One step of the way from the top of a JSON value to a value inside it.
package enum JSONPathComponent: Equatable, Sendable {
    /// The member with this key of an object.
    case key(String)
    /// The element at this index of an array.
    case index(Int)

    /// Writes `path` as ``JSONField`` paths read: `config.layers[2].units`, empty at the top level.
    package static func describe(_ path: [JSONPathComponent]) -> String {
        var text = ""
        for component in path {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }
}

/// A JSON object's members in the order written; keys are unique.
package struct JSONObject: Equatable, Sendable {
    /// One member of an object.
    package struct Member: Equatable, Sendable {
        package var key: String
        package var value: JSON
    }

    /// The members, in order.
    package private(set) var members: [Member] = []
    private var positions: [String: Int] = [:]

    /// Creates an empty object.
    package init() {}

    /// Creates an object from key-value pairs, in order; a repeated key is a programmer error.
    package init(_ pairs: KeyValuePairs<String, JSON>) {
        for (key, value) in pairs {
            guard positions[key] == nil else { fatalError("JSONObject: key '\(key)' given twice") }
            self[key] = value
        }
    }

    /// The keys, in order.
    package var keys: [String] { members.map(\.key) }

    /// The number of members.
    package var count: Int { members.count }

    /// The value for `key`; setting a new key appends it, setting `nil` removes it.
    package subscript(key: String) -> JSON? {
        get { positions[key].map { members[$0].value } }
        set {
            if let position = positions[key] {
                if let newValue {
                    members[position].value = newValue
                } else {
                    members.remove(at: position)
                    positions = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.key, $0) })
                }
            } else if let newValue {
                positions[key] = members.count
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// Appends a member parsed from text, whose key the parser has checked is new.
    mutating func append(_ key: String, _ value: JSON) {
        positions[key] = members.count
        members.append(Member(key: key, value: value))
    }

    package static func == (lhs: JSONObject, rhs: JSONObject) -> Bool { lhs.members == rhs.members }
}

/// A problem reading JSON text or a field of a parsed value.
package enum JSONError: Error, CustomStringConvertible, Equatable {
    /// The text is not one JSON value; positions count bytes, lines and columns from 1, the offset from 0.
    case syntax(offset: Int, line: Int, column: Int, message: String)
    /// An object repeats `key`; `path` leads from the top to that object (empty when it is the top level), and the
    /// position is that of the repeated key.
    case duplicateKey(key: String, path: [JSONPathComponent], offset: Int, line: Int, column: Int)
    /// The text is longer than the reader accepts.
    case tooLarge(byteCount: Int, limit: Int)
    /// A field that must be present is absent; `path` is where it should be (`config.layers[2].units`).
    case missingField(path: String)
    /// A value has the wrong type: `expected` is what the reader needs, `found` what is there.
    case wrongType(path: String, expected: String, found: String)
    /// A value has the right type but not an acceptable value.
    case invalidValue(path: String, value: String, requirement: String)

    /// A sentence saying where and what the problem is.
    package var description: String {
        switch self {
        case let .syntax(offset, line, column, message):
            "invalid JSON at line \(line), column \(column) (byte \(offset)): \(message)"
        case let .duplicateKey(key, path, offset, line, column):
            "invalid JSON at line \(line), column \(column) (byte \(offset)): "
                + JSONError.duplicateKeyMessage(key: key, path: path)
        case let .tooLarge(byteCount, limit): "JSON text of \(byteCount) bytes exceeds the limit of \(limit)"
        case let .missingField(path): "\(path) is missing"
        case let .wrongType(path, expected, found): "\(path): expected \(expected), found \(found)"
        case let .invalidValue(path, value, requirement): "\(path): \(value) is not \(requirement)"
        }
    }

    /// Says which key an object repeats and where that object is.
    package static func duplicateKeyMessage(key: String, path: [JSONPathComponent]) -> String {
        let place = path.isEmpty ? "the top-level object" : "the object at \(JSONPathComponent.describe(path))"
        return "the key \"\(key)\" appears twice in \(place)"
    }

    /// The error with `component` put in front of a duplicate key's path, as the parser unwinds from the object
    /// that repeats the key to the top; other errors are unchanged.
    func nested(in component: JSONPathComponent) -> JSONError {
        guard case let .duplicateKey(key, path, offset, line, column) = self else { return self }
        return .duplicateKey(key: key, path: [component] + path, offset: offset, line: line, column: column)
    }
}

// MARK: - Writing

extension JSON {
    /// Returns the value as JSON text: compact, or indented by two spaces per level when `pretty`.
    ///
    /// Integral numbers below 2^53 in magnitude are written without a fraction (`3`, not `3.0`); others in
    /// the shortest form that reads back as the same `Double`. Numbers that are not finite have no JSON
    /// spelling and are written as `null`.
    package func serialized(pretty: Bool = false) -> String {
        var output = ""
        write(to: &output, pretty: pretty, indent: 0)
        return output
    }

    private func write(to output: inout String, pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            guard pretty else { return }
            output += "\n" + String(repeating: "  ", count: level)
        }
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .number(let number): output += JSON.format(number.value)
        case .string(let text): JSON.writeString(text, to: &output)
        case .array(let elements):
            guard !elements.isEmpty else { output += "[]"; return }
            output += "["
            for (index, element) in elements.enumerated() {
                if index > 0 { output += "," }
                newline(indent + 1)
                element.write(to: &output, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            output += "]"
        case .object(let object):
            guard object.count > 0 else { output += "{}"; return }
            output += "{"
            for (index, member) in object.members.enumerated() {
                if index > 0 { output += "," }
                newline(indent + 1)
                JSON.writeString(member.key, to: &output)
                output += pretty ? ": " : ":"
                member.value.write(to: &output, pretty: pretty, indent: indent + 1)
            }
            newline(indent)
            output += "}"
        }
    }

    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value.rounded() == value, abs(value) < 0x1p53 { return String(Int64(value)) }
        return "\(value)"
    }

    private static func writeString(_ text: String, to output: inout String) {
        output += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case _ where scalar.value < 0x20:
                let digits = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }

    /// A short name of the value's type for error messages, with its value when that is short.
    package var summary: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let number): "the number \(JSON.format(number.value))"
        case .string(let text): text.count <= 40 ? "the string \"\(text)\"" : "a string"
        case .array(let elements): "an array of \(elements.count)"
        case .object: "an object"
        }
    }
}
