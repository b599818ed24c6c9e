import Datasets
import Foundation
import Graph
import TestSupport
import XCTest

final class CSVTests: XCTestCase {
    /// The data sets kept in the repository (`Tests/Fixtures/data`).
    static let dataFolder = Fixture.dataFolder

    func testAirlinePassengers() throws {
        let table = try CSVTable(contentsOf: Self.dataFolder.appendingPathComponent("airline_passengers.csv"))
        XCTAssertEqual(table.columnNames, ["month", "passengers"])
        XCTAssertEqual(table.rowCount, 144)
        let passengers = try table.numericColumns(["passengers"])
        XCTAssertEqual(passengers.shape, [144, 1])
        XCTAssertEqual(passengers[0, 0], 112)
        XCTAssertEqual(passengers[1, 0], 118)
        XCTAssertEqual(passengers[143, 0], 432)
        let months = try table.textColumn("month")
        XCTAssertEqual(months.first, "1949-01")
        XCTAssertEqual(months.last, "1960-12")
    }

    func testUSMacroQuarterly() throws {
        let table = try CSVTable(contentsOf: Self.dataFolder.appendingPathComponent("us_macro_quarterly.csv"))
        XCTAssertEqual(table.rowCount, 203)
        XCTAssertEqual(table.columnNames.count, 14)
        XCTAssertEqual(table.columnNames.prefix(3), ["year", "quarter", "realgdp"])
        let columns = try table.numericColumns(["cpi", "realgdp", "year"])
        XCTAssertEqual(columns.shape, [203, 3])
        assertClose(columns.slice(along: 0, 0..<2), shape: [2, 3], [28.98, 2710.349, 1959, 29.15, 2778.801, 1959],
                    tolerance: 1e-7, "first two rows, in the order asked")
        XCTAssertEqual(columns[202, 2], 2009)
        XCTAssertTrue(table.source.hasSuffix("us_macro_quarterly.csv"))
    }

    func testQuotesWhitespaceAndLineEndings() throws {
        let text = "\u{FEFF}name , \"value\",note\r\n"
            + "  alpha ,  1.5 ,\"says \"\"hi\"\", twice\"\r\n"
            + "\"beta, gamma\",\" -2e1 \",   \r\n"
            + "\r\n"
            + "delta,3,\"two\nlines\"\n"
            + "epsilon,+.25,last\r\n"
            + "\n"
        let table = try CSVTable(string: text)
        XCTAssertEqual(table.source, "<string>")
        XCTAssertEqual(table.columnNames, ["name", "value", "note"])
        XCTAssertEqual(table.rowCount, 4)
        XCTAssertEqual(try table.textColumn("name"), ["alpha", "beta, gamma", "delta", "epsilon"])
        XCTAssertEqual(try table.textColumn("note"), ["says \"hi\", twice", "", "two\nlines", "last"])
        assertClose(try table.numericColumns(["value"]), shape: [4, 1], [1.5, -20, 3, 0.25], tolerance: 0, "values")
    }

    func testLineNumbersCountBlankLinesAndQuotedLineBreaks() {
        // Line 1 header, 2 data, 3 blank, 4-5 one record with a quoted line break, 6 the bad cell.
        let text = "a,b\n1,2\n\n3,\"x\ny\"\noops,4\n"
        assertThrows(.invalidCell(file: "<string>", line: 6, column: "a", text: "oops"),
                     mentioning: ["line 6", "'a'", "oops", "<string>"]) {
            try CSVTable(string: text).numericColumns(["a"])
        }
        // Old Mac line endings: a lone carriage return ends a line too, inside quotes as well.
        assertThrows(.invalidCell(file: "<string>", line: 4, column: "b", text: "x"), mentioning: ["line 4"]) {
            try CSVTable(string: "a,b\r\"x\ry\",2\r3,x\r").numericColumns(["b"])
        }
    }

    func testMissingColumnNamesTheAvailableOnes() {
        assertThrows(.missingColumn(file: "<string>", name: "price", available: ["date", "volume"]),
                     mentioning: ["'price'", "'date'", "'volume'"]) {
            try CSVTable(string: "date,volume\n2020-01-01,5\n").numericColumns(["volume", "price"])
        }
        assertThrows(.missingColumn(file: "<string>", name: "Volume", available: ["date", "volume"])) {
            try CSVTable(string: "date,volume\n2020-01-01,5\n").textColumn("Volume")
        }
    }

    func testNonNumericAndEmptyCellsNameLineAndColumn() {
        let text = "x,y\n1,2\n3,abc\n"
        assertThrows(.invalidCell(file: "<string>", line: 3, column: "y", text: "abc"),
                     mentioning: ["line 3", "'y'", "'abc'"]) {
            try CSVTable(string: text).numericColumns(["y"])
        }
        assertThrows(.invalidCell(file: "<string>", line: 4, column: "x", text: ""),
                     mentioning: ["line 4", "'x'", "empty"]) {
            try CSVTable(string: "x,y\n1,2\n3,4\n  ,5\n").numericColumns(["y", "x"])
        }
        for text in ["nan", "inf", "0x10", "1e39", "1,5", "--1"] {
            let quoted = "\"" + text + "\""
            assertThrows(.invalidCell(file: "<string>", line: 2, column: "v", text: text), mentioning: ["line 2"]) {
                try CSVTable(string: "v\n\(quoted)\n").numericColumns(["v"])
            }
        }
    }

    func testRowWithWrongFieldCountNamesItsLine() {
        assertThrows(.fieldCountMismatch(file: "<string>", line: 3, expected: 2, actual: 3),
                     mentioning: ["line 3", "2", "3"]) {
            try CSVTable(string: "a,b\n1,2\n1,2,3\n4,5\n")
        }
        assertThrows(.fieldCountMismatch(file: "<string>", line: 2, expected: 2, actual: 1), mentioning: ["line 2"]) {
            try CSVTable(string: "a,b\r\n7\r\n")
        }
    }

    func testMalformedHeaderAndQuotesThrow() {
        assertThrows(.emptyFile(file: "<string>"), mentioning: ["<string>", "header"]) { try CSVTable(string: "") }
        assertThrows(.emptyFile(file: "<string>")) { try CSVTable(string: "\n  \r\n") }
        assertThrows(.noDataRows(file: "<string>"), mentioning: ["no data rows"]) { try CSVTable(string: "a,b\n") }
        assertThrows(.duplicateColumn(file: "<string>", name: "a"), mentioning: ["'a'"]) {
            try CSVTable(string: "a,b,a\n1,2,3\n")
        }
        assertThrows(.malformedQuotes(file: "<string>", line: 3), mentioning: ["line 3"]) {
            try CSVTable(string: "a,b\n1,2\n3,\"open\n\n")
        }
        assertThrows(.malformedQuotes(file: "<string>", line: 2), mentioning: ["line 2"]) {
            try CSVTable(string: "a,b\n\"1\"x,2\n")
        }
    }

    func testUnreadableFileNamesItsPath() {
        let url = Self.dataFolder.appendingPathComponent("no_such_file.csv")
        do {
            _ = try CSVTable(contentsOf: url)
            XCTFail("reading a missing file did not throw")
        } catch let error as DataError {
            guard case .unreadableFile(let path, _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(path, url.path)
            XCTAssertTrue(error.description.contains("no_such_file.csv"))
        } catch {
            XCTFail("unexpected \(error)")
        }
    }

    func testErrorsInAFileNameTheFile() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("unroll-csv-\(UUID().uuidString).csv")
        try "t,level\n0,1.5\n1,\n".write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        assertThrows(.invalidCell(file: url.path, line: 3, column: "level", text: ""),
                     mentioning: [url.lastPathComponent, "line 3", "'level'"]) {
            try CSVTable(contentsOf: url).numericColumns(["level"])
        }
    }

    func testManyRowsParseToTheRightValues() throws {
        // 20,000 rows: enough to catch an off-by-one in the field bookkeeping, quick in a debug build.
        var text = "step,value,label\n"
        for step in 0..<20_000 { text += "\(step),\(Float(step) * 0.5),\"r\(step)\"\n" }
        let table = try CSVTable(string: text)
        XCTAssertEqual(table.rowCount, 20_000)
        let values = try table.numericColumns(["value", "step"])
        XCTAssertEqual(values[19_999, 0], 9_999.5)
        XCTAssertEqual(values[12_345, 1], 12_345)
        XCTAssertEqual(try table.textColumn("label")[777], "r777")
    }

    func testNumbersMatchSwiftsCorrectlyRoundedParsing() throws {
        // Short and long significands, both signs, points anywhere and exponents: the conversion of plain
        // cells must agree bit for bit with Float(_:).
        var generator = SeededGenerator(seed: 11)
        var texts: [String] = ["0", "-0", "16777216", "16777217", "0.1", "1e10", "1e-10", "3.4e38", "1.17549435e-38",
                               "99999999", "0.000001", "2710.349", "+.5", "7.", "1E+2", "12345678e-2"]
        for _ in 0..<3_000 {
            let digits = String(generator.nextIndex(below: 1_000_000_000))
            let point = generator.nextIndex(below: digits.count + 1)
            var text = String(digits.prefix(point)) + "." + String(digits.dropFirst(point))
            if generator.nextIndex(below: 2) == 0 { text = "-" + text }
            if generator.nextIndex(below: 3) == 0 { text += "e\(generator.nextIndex(below: 41) - 20)" }
            texts.append(text)
        }
        let table = try CSVTable(string: "v\n" + texts.joined(separator: "\n"))
        let values = try table.numericColumns(["v"]).scalars
        for (text, value) in zip(texts, values) {
            XCTAssertEqual(value.bitPattern, Float(text)?.bitPattern, "\(text) parsed as \(value)")
        }
    }
}
