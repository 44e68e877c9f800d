import MCPGJSON
import MCPGLoader
import Testing

/// The mock backend plugin, loaded through the real loader.
@Suite struct MockTests {
    static let config: JSON = [
        "tools": [
            [
                "name": "greet", "description": "Greets.",
                "inputSchema": [
                    "type": "object", "required": ["name"],
                    "properties": ["name": ["type": "string"], "times": ["type": "integer"]],
                ],
                "result": ["text": "Hello {{name}} x{{times}}{{ nobody }}!"],
            ],
            [
                "name": "weather", "title": "Weather", "annotations": ["readOnlyHint": true],
                "outputSchema": ["type": "object", "properties": ["city": ["type": "string"]]],
                "result": ["structured": ["city": "{{city}}", "temperature_c": 21, "tags": ["{{city}}-now", "{{n}}"]]],
            ],
            ["name": "broken", "result": ["text": "it broke", "is_error": true]],
            ["name": "count", "progress_steps": 3, "delay_ms": 30, "result": ["text": "done"]],
        ]
    ]

    @Test func listsToolsWithOnlyTheGivenFields() async throws {
        let p = try instance("mock", config: Self.config)
        let tools = try #require(try await p.ok("list_tools", [:])["tools"]?.arrayValue)
        #expect(tools.map { $0["name"] } == ["greet", "weather", "broken", "count"])
        #expect(tools[0]["description"] == "Greets.")
        #expect(tools[0]["title"] == nil)
        #expect(tools[0]["inputSchema"]?["required"] == ["name"])
        #expect(tools[1]["title"] == "Weather")
        #expect(tools[1]["annotations"] == ["readOnlyHint": true])
        #expect(tools[1]["outputSchema"]?["type"] == "object")
        #expect(tools[1]["inputSchema"] == ["type": "object"], "default inputSchema")
        #expect(tools[2]["outputSchema"] == nil)
    }

    @Test func templatedText() async throws {
        let p = try instance("mock", config: Self.config)
        let r = try await p.ok("call_tool", ["name": "greet", "arguments": ["name": "Ada", "times": 2]])
        #expect(r["content"] == [["type": "text", "text": "Hello Ada x2!"]])
        #expect(r["isError"] == nil)
        #expect(r["structuredContent"] == nil)
    }

    @Test func templatedStructuredContentAlsoAsText() async throws {
        let p = try instance("mock", config: Self.config)
        let r = try await p.ok("call_tool", ["name": "weather", "arguments": ["city": "Oslo", "n": 3]])
        // A string that is only a placeholder takes the argument's JSON value ("{{n}}" → 3); mixed text stays text.
        let expected: JSON = ["city": "Oslo", "temperature_c": 21, "tags": ["Oslo-now", 3]]
        #expect(r["structuredContent"] == expected)
        let text = try #require(r["content"]?[0]?["text"]?.stringValue)
        #expect(try JSON.parse(text) == expected, "TOOL-7: the text block is the serialized structuredContent")
    }

    @Test func cannedErrorResult() async throws {
        let p = try instance("mock", config: Self.config)
        let r = try await p.ok("call_tool", ["name": "broken", "arguments": [:]])
        #expect(r["isError"] == true)
        #expect(r["content"]?[0]?["text"] == "it broke")
    }

    @Test func unknownToolIsAnInvalidParamsError() async throws {
        let p = try instance("mock", config: Self.config)
        let e = try await p.failure("call_tool", ["name": "nope", "arguments": [:]])
        #expect(e.code == -32602)
        #expect(e.message == "unknown tool: nope")
    }

    @Test func inputValidationErrorsAreToolResults() async throws {
        let p = try instance("mock", config: Self.config)
        let missing = try await p.ok("call_tool", ["name": "greet", "arguments": ["times": 1]])
        #expect(missing["isError"] == true)
        let text = try #require(missing["content"]?[0]?["text"]?.stringValue)
        #expect(text.contains("missing required argument \"name\""), "\(text)")
        let wrongType = try await p.ok("call_tool", ["name": "greet", "arguments": ["name": "Ada", "times": "two"]])
        #expect(wrongType["isError"] == true)
        let text2 = try #require(wrongType["content"]?[0]?["text"]?.stringValue)
        #expect(text2.contains("\"times\" must be integer, not string"), "\(text2)")
    }

    @Test func progressNotificationsArriveThroughEmit() async throws {
        let p = try instance("mock", config: Self.config)
        let recorder = EmitRecorder()
        let r = try await p.ok(
            "call_tool", ["name": "count", "arguments": [:], "_meta": ["progressToken": "tok-7"]], emit: recorder.emit)
        #expect(r["content"]?[0]?["text"] == "done")
        let messages = recorder.all
        #expect(messages.count == 3)
        for (i, m) in messages.enumerated() {
            #expect(m["jsonrpc"] == "2.0")
            #expect(m["method"] == "notifications/progress")
            #expect(m["params"] == ["progressToken": "tok-7", "progress": .int(Int64(i + 1)), "total": 3])
        }
    }

    @Test func noProgressWithoutAToken() async throws {
        let p = try instance("mock", config: Self.config)
        let recorder = EmitRecorder()
        let r = try await p.ok("call_tool", ["name": "count", "arguments": [:]], emit: recorder.emit)
        #expect(r["content"]?[0]?["text"] == "done")
        #expect(recorder.all.isEmpty)
    }

    @Test func duplicateToolIsRefusedAtCreate() throws {
        let message = try creationError("mock", config: ["tools": [["name": "a"], ["name": "a"]]])
        #expect(message.contains("duplicate tool \"a\""), "\(message)")
    }
}
