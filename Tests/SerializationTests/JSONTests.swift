import XCTest
@testable import Serialization

final class JSONTests: XCTestCase {
    func testParsesEveryKindOfValueWithKnownAnswers() throws {
        let value = try JSON.parse(#" {"a": [1, -2.5, 3e2, true, false, null], "b": {"c": "d\u00e9\n\ud83d\ude00"}} "#)
        let expected = JSON.object(JSONObject([
            "a": .array([.number(1), .number(-2.5), .number(300), .bool(true), .bool(false), .null]),
            "b": .object(JSONObject(["c": .string("dé\n😀")])),
        ]))
        XCTAssertEqual(value, expected)
    }

    func testObjectsKeepKeyOrderAndRejectDuplicates() throws {
        guard case .object(let object) = try JSON.parse(#"{"z": 1, "a": 2, "m": 3}"#) else { return XCTFail() }
        XCTAssertEqual(object.keys, ["z", "a", "m"])
        XCTAssertEqual(object["a"], .number(2))
        XCTAssertThrowsError(try JSON.parse("{\"a\": 1,\n \"a\": 2}")) { error in
            XCTAssertEqual(error as? JSONError, .duplicateKey(key: "a", path: [], offset: 10, line: 2, column: 2))
        }
        XCTAssertThrowsError(try JSON.parse(#"{"layers": [{}, {"config": {"u": 1, "u": 2}}]}"#)) { error in
            XCTAssertEqual(error as? JSONError, .duplicateKey(key: "u", path: [.key("layers"), .index(1), .key("config")],
                                                              offset: 36, line: 1, column: 37))
            XCTAssertEqual("\(error)", "invalid JSON at line 1, column 37 (byte 36): "
                + "the key \"u\" appears twice in the object at layers[1].config")
        }
    }

    func testNumbersKeepTheirLiteralForExactIntegers() throws {
        let value = try JSON.parse("[8, 8.0, 8e0, -3, 9007199254740993, 99999999999999999999]")
        guard case .array(let elements) = value else { return XCTFail("\(value)") }
        let numbers = elements.compactMap { element -> JSONNumber? in
            guard case .number(let number) = element else { return nil }
            return number
        }
        XCTAssertEqual(numbers.map(\.literal), ["8", "8.0", "8e0", "-3", "9007199254740993", "99999999999999999999"])
        XCTAssertEqual(numbers.map(\.exactInteger), [8, nil, nil, -3, 9_007_199_254_740_993, nil])
        XCTAssertEqual(numbers[0], numbers[1], "numbers compare by value")
        XCTAssertEqual(numbers[4].value, 0x1p53, "the nearest Double rounds 2^53 + 1 down")
        XCTAssertEqual(JSONNumber(8).exactInteger, 8)
        XCTAssertNil(JSONNumber(0x1p53).exactInteger)
    }

    func testSerializesIntegersWithoutFractionAndRoundTrips() throws {
        let text = #"{"units":400,"rate":0.25,"small":1e-07,"neg":-3,"big":1.7976931348623157e+308,"s":"q\"\\\u0001","e":[],"o":{}}"#
        let value = try JSON.parse(text)
        XCTAssertEqual(value.serialized(), text)
        XCTAssertEqual(try JSON.parse(value.serialized(pretty: true)), value)
        XCTAssertEqual(JSON.array([.number(2), .number(0.1)]).serialized(pretty: true), "[\n  2,\n  0.1\n]")
    }

    func testMalformedInputsThrowSyntaxErrorsWithPositions() {
        let cases: [(String, Int, String)] = [
            ("", 0, "unexpected end of the text, expected a value"),
            ("[1,]", 3, "expected a value"),
            ("{\"a\":1,}", 7, "expected a string key"),
            ("01", 0, "leading zero in a number"),
            ("1.", 2, "expected a digit after the decimal point"),
            ("[1 2]", 3, "expected ',' or ']' after an array element"),
            ("\"a\tb\"", 2, "unescaped control character in a string"),
            ("\"\\x\"", 2, "invalid escape"),
            ("\"\\ud800\"", 7, "unpaired surrogate escape"),
            ("NaN", 0, "expected a value"),
            ("tru", 0, "expected a value"),
            ("1e999", 0, "the number 1e999 is beyond the range of a double"),
            ("{} {}", 3, "unexpected text after the JSON value"),
            ("// c\n1", 0, "expected a value"),
        ]
        for (text, offset, message) in cases {
            XCTAssertThrowsError(try JSON.parse(text), text) { error in
                guard case let .syntax(actualOffset, _, _, actualMessage)? = error as? JSONError else {
                    return XCTFail("\(text): \(error)")
                }
                XCTAssertEqual(actualOffset, offset, text)
                XCTAssertEqual(actualMessage, message, text)
            }
        }
        XCTAssertThrowsError(try JSON.parse([0x22, 0xC3, 0x28, 0x22])) { error in
            XCTAssertEqual((error as? JSONError)?.description,
                           "invalid JSON at line 1, column 1 (byte 0): the string is not valid UTF-8")
        }
    }

    func testDepthAndSizeLimitsThrowInsteadOfExhaustingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSON.parse(deep)) { error in
            guard case .syntax(_, _, _, let message)? = error as? JSONError else { return XCTFail("\(error)") }
            XCTAssertEqual(message, "nested deeper than 256 levels")
        }
        XCTAssertThrowsError(try JSON.parse("[1, 2]", limits: .init(maximumByteCount: 5))) { error in
            XCTAssertEqual(error as? JSONError, .tooLarge(byteCount: 6, limit: 5))
        }
    }

    func testTypedReadsNameTheFieldPath() throws {
        let config = try JSON.parse(#"{"layers": [{"units": 4}, {"units": 2.5}, {"name": "x"}, {"units": "8"}]}"#)
        let layers = try config.field("layers").elements()
        XCTAssertEqual(try layers[0].field("units").int(), 4)
        XCTAssertThrowsError(try layers[1].field("units").int(in: 1...10)) { error in
            XCTAssertEqual("\(error)", "layers[1].units: 2.5 is not an integer in 1...10")
        }
        XCTAssertThrowsError(try layers[2].field("units")) { error in
            XCTAssertEqual(error as? JSONError, .missingField(path: "layers[2].units"))
        }
        XCTAssertThrowsError(try layers[3].field("units").double()) { error in
            XCTAssertEqual("\(error)", "layers[3].units: expected a number, found the string \"8\"")
        }
        XCTAssertNil(try layers[2].optionalField("units"))
    }
}
