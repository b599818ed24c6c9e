// The one CSV parser, and the one place in Datasets that reads bytes through a pointer: a CSV file is a byte
// stream whose fields, quotes and line ends are found byte by byte in one pass, and numbers are converted
// only for the columns asked for. Everything after parsing (scaling, windows) works on tensors.
import Foundation
import Graph

/// A table read from comma-separated text with a header row, whose columns are pulled out by name.
///
/// The format is RFC 4180 with the leniencies of spreadsheet exports: fields are trimmed of spaces and
/// tabs; a field in double quotes may hold commas, line breaks and doubled quotes (`""` for `"`); lines
/// end in LF, CRLF or CR; a leading UTF-8 byte-order mark and blank lines (such as a trailing one) are
/// skipped. Every data row must have as many fields as the header.
///
/// Parsing checks every row and records only where each data row starts; ``numericColumns(_:)`` finds the
/// fields of a row again and converts only the columns asked for, reporting a bad cell with its file, line and
/// column name. A table so costs its text plus two integers per row (about 3 times the file for short numeric
/// rows), where a record of every field's position cost 20 times.
public struct CSVTable: Sendable {
    /// Where the text came from: the file's path, or `"<string>"`.
    public let source: String
    /// The header's field names, in file order.
    public let columnNames: [String]
    /// The number of data rows (the header and blank lines excluded).
    public var rowCount: Int { rowLines.count }

    private let bytes: [UInt8]
    /// The byte offset at which each data row starts.
    private let rowStarts: [Int]
    /// The 1-based line on which each data row starts.
    private let rowLines: [Int]

    /// Where one field's text lies in `bytes`, quotes excluded.
    private struct Cell: Sendable {
        var start: Int
        var end: Int
        var isQuoted: Bool
        var hasDoubledQuotes: Bool
    }

    /// Reads and parses a CSV file.
    ///
    /// - Throws: ``DataError/unreadableFile(path:reason:)`` when the file cannot be read, and the errors of
    ///   ``init(string:)`` naming the file's path.
    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            // Mapped, not read: the bytes are copied once into the table's own array.
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw DataError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        try self.init(bytes: [UInt8](data), source: url.path)
    }

    /// Parses CSV text; errors name the source `"<string>"`.
    ///
    /// - Throws: ``DataError/emptyFile(file:)`` without a header row, ``DataError/noDataRows(file:)``
    ///   without data rows, and ``DataError`` cases for a repeated header name, a row with the wrong number
    ///   of fields or a malformed quoted field, each with its 1-based line.
    public init(string: String) throws {
        try self.init(bytes: Array(string.utf8), source: "<string>")
    }

    private init(bytes: [UInt8], source: String) throws {
        let parser = try bytes.withUnsafeBufferPointer { text in
            var parser = Parser(source: source, text: text)
            try parser.parse()
            return parser.result
        }
        guard let header = parser.header else { throw DataError.emptyFile(file: source) }
        guard !parser.rowLines.isEmpty else { throw DataError.noDataRows(file: source) }
        let names = header.map { CSVTable.text(of: $0, in: bytes) }
        var seen = Set<String>()
        for name in names where !seen.insert(name).inserted {
            throw DataError.duplicateColumn(file: source, name: name)
        }
        self.source = source
        self.columnNames = names
        self.bytes = bytes
        self.rowStarts = parser.rowStarts
        self.rowLines = parser.rowLines
    }

    /// Returns the named columns as numbers, `[rowCount, names.count]`, in the order of `names`.
    ///
    /// A cell must hold a finite decimal number such as `12`, `-0.5` or `1.5e3` (surrounding spaces and
    /// quotes allowed).
    ///
    /// - Throws: ``DataError/missingColumn(file:name:available:)`` for a name not in the header, and
    ///   ``DataError/invalidCell(file:line:column:text:)`` for an empty or non-numeric cell.
    public func numericColumns(_ names: [String]) throws -> Tensor {
        let indices = try names.map(columnIndex(of:))
        let width = columnNames.count, outputWidth = indices.count
        var result = Tensor.zeros([rowCount, outputWidth])
        try bytes.withUnsafeBufferPointer { text in
            try result.withUnsafeMutableBufferPointer { output in
                var record: [Cell] = []
                record.reserveCapacity(width)
                for row in 0..<rowCount {
                    try CSVTable.fields(ofRowAt: rowStarts[row], in: text, source: source, into: &record)
                    for (k, column) in indices.enumerated() {
                        let cell = record[column]
                        guard let value = CSVTable.number(in: cell, of: text) else {
                            throw DataError.invalidCell(file: source, line: rowLines[row], column: names[k],
                                                        text: CSVTable.text(of: cell, in: bytes))
                        }
                        output[row * outputWidth + k] = value
                    }
                }
            }
        }
        return result
    }

    /// Returns the text of every cell in the named column (for labels such as dates).
    ///
    /// - Throws: ``DataError/missingColumn(file:name:available:)`` for a name not in the header.
    public func textColumn(_ name: String) throws -> [String] {
        let column = try columnIndex(of: name)
        return try bytes.withUnsafeBufferPointer { text in
            var record: [Cell] = []
            return try rowStarts.map { start in
                try CSVTable.fields(ofRowAt: start, in: text, source: source, into: &record)
                return CSVTable.text(of: record[column], in: bytes)
            }
        }
    }

    /// Finds again the fields of the data row starting at byte `start` (which parsing already checked).
    private static func fields(ofRowAt start: Int, in text: UnsafeBufferPointer<UInt8>, source: String,
                               into record: inout [Cell]) throws {
        var parser = Parser(source: source, text: text)
        parser.index = start
        record.removeAll(keepingCapacity: true)
        repeat {
            record.append(try parser.field())
        } while try !parser.consumeDelimiter()
    }

    private func columnIndex(of name: String) throws -> Int {
        guard let index = columnNames.firstIndex(of: name) else {
            throw DataError.missingColumn(file: source, name: name, available: columnNames)
        }
        return index
    }

    private static func text(of cell: Cell, in bytes: [UInt8]) -> String {
        let raw = String(decoding: bytes[cell.start..<cell.end], as: UTF8.self)
        return cell.hasDoubledQuotes ? raw.replacingOccurrences(of: "\"\"", with: "\"") : raw
    }

    /// Returns the finite number a cell holds, or `nil`.
    private static func number(in cell: Cell, of text: UnsafeBufferPointer<UInt8>) -> Float? {
        var start = cell.start, end = cell.end
        // Quoted cells keep their inner spaces; a number may still be written `" 12 "`.
        while start < end && CSVTable.isBlank(text[start]) { start += 1 }
        while end > start && CSVTable.isBlank(text[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        // Only plain decimal notation: `Float(_:)` would also take "nan", "inf" and hexadecimal.
        for index in start..<end {
            switch text[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                continue
            default:
                return nil
            }
        }
        if let value = exactDecimal(text, start, end) { return value }
        let digits = String(decoding: UnsafeBufferPointer(rebasing: text[start..<end]), as: UTF8.self)
        guard let value = Float(digits), value.isFinite else { return nil }
        return value
    }

    /// Powers of ten that a `Float` holds exactly (5¹⁰ < 2²⁴).
    private static let exactPowersOfTen: [Float] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]

    /// Returns the value of `[+-]digits[.digits][(e|E)[+-]digits]` when its significand and power of ten are
    /// both exact in a `Float`, so one multiplication or division rounds correctly, as `Float(_:)` would;
    /// `nil` sends everything else (long significands, large exponents, malformed text) to `Float(_:)`.
    ///
    /// Typical data cells ("2710.349", "-0.25", "432") take this path, which avoids making a `String` per cell.
    private static func exactDecimal(_ text: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Float? {
        var index = start
        var isNegative = false
        if text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
            isNegative = text[index] == UInt8(ascii: "-")
            index += 1
        }
        var significand: UInt32 = 0, digitCount = 0, fractionDigits = 0, seenPoint = false
        while index < end {
            let byte = text[index]
            if byte == UInt8(ascii: ".") {
                if seenPoint { return nil }
                seenPoint = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                significand = significand &* 10 &+ UInt32(byte &- UInt8(ascii: "0"))
                digitCount += 1
                if seenPoint { fractionDigits += 1 }
                // Eight digits cannot overflow UInt32; the 2²⁴ test below decides exactness.
                if digitCount > 8 { return nil }
            } else {
                break
            }
            index += 1
        }
        guard digitCount > 0 else { return nil }
        var exponent = 0
        if index < end {
            guard text[index] == UInt8(ascii: "e") || text[index] == UInt8(ascii: "E") else { return nil }
            index += 1
            var isExponentNegative = false
            if index < end && (text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+")) {
                isExponentNegative = text[index] == UInt8(ascii: "-")
                index += 1
            }
            guard index < end, end - index <= 2 else { return nil }
            while index < end {
                let byte = text[index]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
                exponent = exponent * 10 + Int(byte - UInt8(ascii: "0"))
                index += 1
            }
            if isExponentNegative { exponent = -exponent }
        }
        let power = exponent - fractionDigits
        guard significand <= 1 << 24, power >= -10 && power <= 10 else { return nil }
        let magnitude = power >= 0 ? Float(significand) * exactPowersOfTen[power]
                                   : Float(significand) / exactPowersOfTen[-power]
        return isNegative ? -magnitude : magnitude
    }

    @inline(__always)
    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// What a parse found: the header's fields, then where each data row starts and on which line.
    private struct ParseResult {
        var header: [Cell]?
        var rowStarts: [Int] = []
        var rowLines: [Int] = []
    }

    /// A single pass over the bytes that records where each field lies.
    private struct Parser {
        let source: String
        let text: UnsafeBufferPointer<UInt8>
        var index = 0
        var line = 1
        var result = ParseResult()

        init(source: String, text: UnsafeBufferPointer<UInt8>) {
            self.source = source
            self.text = text
        }

        private static let comma = UInt8(ascii: ","), quote = UInt8(ascii: "\"")
        private static let newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")

        mutating func parse() throws {
            if text.count >= 3 && text[0] == 0xEF && text[1] == 0xBB && text[2] == 0xBF { index = 3 }
            // Rows end in line breaks: reserving for them up front keeps the two per-row arrays from growing by doubling.
            let lineBreaks = text.reduce(0) { $0 + ($1 == Parser.newline || $1 == Parser.carriageReturn ? 1 : 0) }
            result.rowStarts.reserveCapacity(lineBreaks + 1)
            result.rowLines.reserveCapacity(lineBreaks + 1)
            var record: [Cell] = []
            while index < text.count {
                let recordLine = line, recordStart = index
                record.removeAll(keepingCapacity: true)
                repeat {
                    record.append(try field())
                } while try !consumeDelimiter()
                try finish(record, line: recordLine, start: recordStart)
            }
        }

        /// Consumes one field, stopping at the delimiter that follows it.
        mutating func field() throws -> Cell {
            skipBlanks()
            if index < text.count && text[index] == Parser.quote { return try quotedField() }
            let start = index
            while index < text.count {
                let byte = text[index]
                if byte == Parser.comma || byte == Parser.newline || byte == Parser.carriageReturn { break }
                index += 1
            }
            var end = index
            while end > start && CSVTable.isBlank(text[end - 1]) { end -= 1 }
            return Cell(start: start, end: end, isQuoted: false, hasDoubledQuotes: false)
        }

        /// Consumes a field that starts with a quote, which may hold delimiters, line breaks and `""`.
        private mutating func quotedField() throws -> Cell {
            let openingLine = line
            index += 1
            var cell = Cell(start: index, end: index, isQuoted: true, hasDoubledQuotes: false)
            while true {
                guard index < text.count else { throw DataError.malformedQuotes(file: source, line: openingLine) }
                switch text[index] {
                case Parser.quote:
                    if index + 1 < text.count && text[index + 1] == Parser.quote {
                        cell.hasDoubledQuotes = true
                        index += 1
                    } else {
                        cell.end = index
                        index += 1
                        skipBlanks()
                        return cell
                    }
                case Parser.newline:
                    line += 1
                case Parser.carriageReturn where index + 1 == text.count || text[index + 1] != Parser.newline:
                    line += 1
                default:
                    break
                }
                index += 1
            }
        }

        /// Consumes the comma or line break after a field; returns whether it ended the record.
        mutating func consumeDelimiter() throws -> Bool {
            guard index < text.count else { return true }
            switch text[index] {
            case Parser.comma:
                index += 1
                return false
            case Parser.carriageReturn:
                index += index + 1 < text.count && text[index + 1] == Parser.newline ? 2 : 1
                line += 1
                return true
            case Parser.newline:
                index += 1
                line += 1
                return true
            default:
                throw DataError.malformedQuotes(file: source, line: line)
            }
        }

        private mutating func skipBlanks() {
            while index < text.count && CSVTable.isBlank(text[index]) { index += 1 }
        }

        private mutating func finish(_ record: [Cell], line: Int, start: Int) throws {
            if record.count == 1 && !record[0].isQuoted && record[0].start == record[0].end { return }
            guard let header = result.header else {
                result.header = record
                return
            }
            guard record.count == header.count else {
                throw DataError.fieldCountMismatch(file: source, line: line, expected: header.count,
                                                   actual: record.count)
            }
            result.rowStarts.append(start)
            result.rowLines.append(line)
        }
    }
}
