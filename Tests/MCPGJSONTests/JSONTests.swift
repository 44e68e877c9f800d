import MCPGJSON
import Testing

@Test func roundTripKeepsOrderAndIntegers() throws {
    let text = #"{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call","params":{"b":1,"a":[true,null,1.5]}}"#
    let v = try JSON.parse(text)
    #expect(v["id"] == .int(9007199254740993))
    #expect(v.text == text)
}
