import Foundation

/// Finds the first syntax error in JSON text and says where it is.
///
/// `JSONDecoder` on Linux reports a syntax error only as "not valid JSON", with no position, and accepts some
/// text that is not JSON (a trailing comma, a leading zero); this strict RFC 8259 scan runs first so the message
/// can name a line and column. Nesting is bounded so hostile input cannot exhaust the stack.
struct JSONSyntaxCheck {
    private static let maximumDepth = 512
    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    /// Returns `"line L, column C: problem"` for the first syntax error in `data`, or `nil` if there is none.
    static func firstError(in data: Data) -> String? {
        var check = JSONSyntaxCheck(bytes: Array(data))
        do {
            try check.value()
            check.skipWhitespace()
            guard check.position == check.bytes.count else { throw check.failure("unexpected text after the JSON value") }
            return nil
        } catch let failure as Failure {
            return failure.message
        } catch {
            return nil
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    struct Failure: Error {
        let message: String
    }

    private func failure(_ problem: String) -> Failure {
        let before = bytes[..<min(position, bytes.count)]
        let line = before.count(where: { $0 == UInt8(ascii: "\n") }) + 1
        let column = before.count - (before.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0) + 1
        return Failure(message: "line \(line), column \(column): \(problem)")
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { position += 1 }
    }

    private mutating func expect(_ character: Character, _ context: String) throws {
        skipWhitespace()
        guard current == character.asciiValue else {
            throw failure(current == nil ? "unexpected end of the text \(context)" : "expected '\(character)' \(context)")
        }
        position += 1
    }

    private mutating func value() throws {
        skipWhitespace()
        guard let byte = current else { throw failure("unexpected end of the text, expected a value") }
        switch byte {
        case UInt8(ascii: "{"): try container(close: "}", isObject: true)
        case UInt8(ascii: "["): try container(close: "]", isObject: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: throw failure("expected a value")
        }
    }

    private mutating func container(close: Character, isObject: Bool) throws {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw failure("nested deeper than \(Self.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if current == close.asciiValue {
            position += 1
            return
        }
        while true {
            if isObject {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else {
                    throw failure(current == nil ? "unexpected end of the text in an object" : "expected a string key")
                }
                try string()
                try expect(":", "after an object key")
            }
            try value()
            skipWhitespace()
            if current == close.asciiValue {
                position += 1
                return
            }
            try expect(",", "or '\(close)' after \(isObject ? "an object member" : "an array element")")
        }
    }

    private mutating func string() throws {
        position += 1
        while let byte = current {
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return
            case UInt8(ascii: "\\"):
                guard let escape = current else { break }
                if escape == UInt8(ascii: "u") {
                    position += 1
                    for _ in 0..<4 {
                        guard let digit = current, Character(Unicode.Scalar(digit)).isHexDigit else {
                            throw failure("expected four hexadecimal digits after \\u")
                        }
                        position += 1
                    }
                } else if Array("\"\\/bfnrt".utf8).contains(escape) {
                    position += 1
                } else {
                    throw failure("invalid escape")
                }
            case 0..<0x20:
                position -= 1
                throw failure("unescaped control character in a string")
            default: break
            }
        }
        throw failure("unterminated string")
    }

    private mutating func digits() -> Int {
        let start = position
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        return position - start
    }

    private mutating func number() throws {
        if current == UInt8(ascii: "-") { position += 1 }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0 else { throw failure("expected a digit") }
        guard integerDigits == 1 || bytes[integerStart] != UInt8(ascii: "0") else {
            position = integerStart
            throw failure("leading zero in a number")
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw failure("expected a digit after the decimal point") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw failure("expected a digit in the exponent") }
        }
    }

    private mutating func literal(_ word: String) throws {
        let expected = Array(word.utf8)
        guard position + expected.count <= bytes.count,
              bytes[position..<(position + expected.count)].elementsEqual(expected) else {
            throw failure("expected a value")
        }
        position += expected.count
    }
}
