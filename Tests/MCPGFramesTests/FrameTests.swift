import MCPGFrames
import MCPGJSON
import Testing

@Suite struct FrameParsing {
    @Test func requestKeepsIdTypeAndParams() throws {
        let f = try Frame.parse(Array(#"{"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"name":"echo"}}"#.utf8))
        #expect(f == .request(id: .string("a1"), method: "tools/call", params: ["name": "echo"]))
        let g = try Frame.parse(Array(#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#.utf8))
        #expect(g == .request(id: .int(7), method: "ping", params: nil))
    }

    /// BASE-4: no id means a notification.
    @Test func notificationHasNoID() throws {
        let f = try Frame.parse(Array(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.utf8))
        #expect(f == .notification(method: "notifications/initialized", params: nil))
    }

    /// ERR-1: not JSON is -32700 without id.
    @Test func garbageIsParseError() {
        #expect(throws: FrameError.self) { try Frame.parse(Array("{not json".utf8)) }
        do { _ = try Frame.parse(Array("{not json".utf8)) } catch {
            #expect(error.error.code == -32700)
            #expect(error.id == nil)
        }
    }

    /// BASE-5: batches are refused with -32600.
    @Test func batchIsInvalidRequest() {
        do {
            _ = try Frame.parse(Array(#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.utf8))
            Issue.record("a batch was accepted")
        } catch {
            #expect(error.error.code == -32600)
            #expect(error.error.message.contains("batch"))
        }
    }

    /// BASE-2: a null id is not an id; BASE-3: a readable id is kept for the error answer.
    @Test func badIDsAndVersions() {
        for (text, code, id) in [
            (#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#, -32600, RequestID?.none),
            (#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#, -32600, RequestID.int(3)),
            (#"{"jsonrpc":"2.0","id":4,"method":5}"#, -32600, RequestID.int(4)),
            (#"{"jsonrpc":"2.0","id":5,"method":"x","params":"s"}"#, -32600, RequestID.int(5)),
            (#""just a string""#, -32600, RequestID?.none),
        ] {
            do {
                _ = try Frame.parse(Array(text.utf8))
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.error.code == code, "\(text)")
                #expect(error.id == id, "\(text)")
            }
        }
    }

    @Test func responsesAndErrorsRoundTrip() throws {
        let r = Frame.response(id: .int(1), result: ["tools": []])
        #expect(try Frame.parse(r.serialized()) == r)
        let e = Frame.errorResponse(id: .string("x"), error: RPCError.forbidden.withCorrelation("abc"))
        let parsed = try Frame.parse(e.serialized())
        #expect(parsed == e)
        #expect(e.json["error"]?["data"]?["correlationId"] == "abc")
    }

    @Test func errorWithoutIDSerializesNullID() {
        let e = Frame.errorResponse(id: nil, error: .parseError())
        #expect(e.json["id"] == .null)
    }
}
