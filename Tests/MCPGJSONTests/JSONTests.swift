import MCPGJSON
import Testing

@Test func roundTripKeepsOrderAndIntegers() throws {
    let text = #"{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call","params":{"b":1,"a":[true,null,1.5]}}"#
    let v = try JSON.parse(text)
    #expect(v["id"] == .int(9007199254740993))
    #expect(v.text == text)
}

@Test func escapesAndUnicodeRoundTrip() throws {
    let v: JSON = ["s": "quote \" backslash \\ newline \n tab \t ctl \u{01} emoji 😀 é"]
    let back = try JSON.parse(v.serialized())
    #expect(back == v)
    #expect(try JSON.parse(#"{"a":"\ud83d\ude00"}"#)["a"] == "😀")
}

@Test func rejectsMalformedInput() {
    for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\x\"", "\"\\ud800\"", "tru", "{} x", "\"a\u{0}b\""] {
        #expect(throws: JSONParseError.self, "\(bad)") { try JSON.parse(bad) }
    }
}

@Test func depthIsBounded() {
    let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
    #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
    let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
    #expect((try? JSON.parse(ok)) != nil)
}

@Test func numbers() throws {
    #expect(try JSON.parse("-12") == .int(-12))
    #expect(try JSON.parse("1.5e3") == .double(1500))
    #expect(try JSON.parse("92233720368547758070") == .double(92233720368547758070))
    #expect(JSON.double(3).text == "3")
    #expect(JSON.double(0.25).text == "0.25")
}

@Test func objectEqualityIgnoresOrder() throws {
    #expect(try JSON.parse(#"{"a":1,"b":2}"#) == JSON.parse(#"{"b":2,"a":1}"#))
    #expect(try JSON.parse(#"{"a":1}"#) != JSON.parse(#"{"a":2}"#))
}

@Test func utf8IsValidatedStrictly() throws {
    // Valid multi-byte text survives; overlong forms, surrogates, stray continuation bytes and truncation do not.
    #expect(try JSON.parse(Array("\"héllo → 😀 \u{10FFFF}\"".utf8)) == .string("héllo → 😀 \u{10FFFF}"))
    for bad: [UInt8] in [[0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82],
                         [0xF8, 0x88, 0x80, 0x80, 0x80]] {
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22] + bad + [0x22]) }
        #expect(throws: JSONParseError.self) { try JSON.parse([0x22, 0x5C, 0x6E] + bad + [0x22]) }
    }
}
