/// Typed reads of a parsed ``JSON`` value that throw ``JSONError`` naming where the value is, as a reader finds
/// it in the file: `config.layers[2].config.units`.
///
/// ```swift
/// let root = JSONField(try JSON.parse(bytes), path: "config.json")
/// for layer in try root.field("config").field("layers").elements() {
///     let units = try layer.field("config").field("units").int(in: 1...1 << 24)
/// }
/// ```
package struct JSONField: Sendable {
    /// The value.
    package let value: JSON
    /// Where the value is (`config.layers[2].units`).
    package let path: String

    /// Wraps a value found at `path`.
    package init(_ value: JSON, path: String = "") {
        self.value = value
        self.path = path
    }

    private func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    private func wrongType(_ expected: String) -> JSONError {
        .wrongType(path: path.isEmpty ? "the top level" : path, expected: expected, found: value.summary)
    }

    /// Returns the member `key` of this object.
    ///
    /// - Throws: ``JSONError/missingField(path:)`` when absent, ``JSONError/wrongType(path:expected:found:)``
    ///   when this is not an object.
    package func field(_ key: String) throws -> JSONField {
        guard let member = try optionalField(key) else { throw JSONError.missingField(path: child(key)) }
        return member
    }

    /// Returns the member `key` of this object, or `nil` when it is absent or `null`.
    package func optionalField(_ key: String) throws -> JSONField? {
        guard case .object(let object) = value else { throw wrongType("an object") }
        guard let member = object[key], member != .null else { return nil }
        return JSONField(member, path: child(key))
    }

    /// Returns the elements of this array, each with its index in the path.
    package func elements() throws -> [JSONField] {
        guard case .array(let elements) = value else { throw wrongType("an array") }
        return elements.enumerated().map { JSONField($1, path: "\(path)[\($0)]") }
    }

    /// Returns the members of this object in order.
    package func members() throws -> [(key: String, value: JSONField)] {
        guard case .object(let object) = value else { throw wrongType("an object") }
        return object.members.map { ($0.key, JSONField($0.value, path: child($0.key))) }
    }

    /// Returns this string.
    package func string() throws -> String {
        guard case .string(let text) = value else { throw wrongType("a string") }
        return text
    }

    /// Returns this Boolean.
    package func bool() throws -> Bool {
        guard case .bool(let flag) = value else { throw wrongType("true or false") }
        return flag
    }

    /// Returns this number.
    package func double() throws -> Double {
        guard case .number(let number) = value else { throw wrongType("a number") }
        return number.value
    }

    /// Returns this number, which must be an integer in `range`.
    package func int(in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        let number = try double()
        guard number.rounded() == number, abs(number) < 0x1p53, range.contains(Int(number)) else {
            throw JSONError.invalidValue(path: path, value: JSON.format(number),
                                         requirement: range == Int.min...Int.max ? "an integer" : "an integer in \(range)")
        }
        return Int(number)
    }

    /// Returns this number as a `Float` that satisfies `isValid`; `requirement` says what that is.
    package func float(_ requirement: String, where isValid: (Float) -> Bool) throws -> Float {
        let number = try double()
        guard isValid(Float(number)) else {
            throw JSONError.invalidValue(path: path, value: JSON.format(number), requirement: requirement)
        }
        return Float(number)
    }
}

extension JSON {
    /// Returns the member `key` of this object as a ``JSONField`` whose path starts at `key`.
    package func field(_ key: String) throws -> JSONField { try JSONField(self).field(key) }

    /// Returns the elements of this array as ``JSONField``s.
    package func elements() throws -> [JSONField] { try JSONField(self).elements() }
}
