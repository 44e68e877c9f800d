import MCPGJSON
import MCPGLoader
import Testing

/// The redact transform plugin, loaded through the real loader.
@Suite struct RedactTests {
    static let config: JSON = [
        "rules": [
            ["tools": ["lookup_*"], "patterns": [["name": "card", "builtin": "credit_card"]]],
            ["patterns": [["name": "email", "builtin": "email"]]],
            ["tools": ["hr.?sn"], "patterns": [["name": "ssn", "regex": #"\d{3}-\d{2}-\d{4}"#, "replacement": "***"]]],
        ]
    ]

    func response(_ tool: String, _ result: JSON) async throws -> JSON {
        let p = try instance("redact", config: Self.config)
        let r = try await p.ok("response", ["tool": .string(tool), "backend": "demo", "result": result])
        return try #require(r["result"])
    }

    @Test func cardNumbersAreRedactedInTextAndStructuredContent() async throws {
        let result: JSON = [
            "content": [
                ["type": "text", "text": "Ada: card 4111 1111 1111 1111, backup 5500-0000-0000-0004."],
                ["type": "resource", "resource": ["uri": "mem://4111111111111111", "text": "378282246310005"]],
            ],
            "structuredContent": [
                "customer": ["name": "Ada", "card": "4111111111111111", "history": [["card": "5500 0000 0000 0004"]]],
                "type": "4111-1111-1111-1111",
                "count": 3,
            ],
        ]
        let r = try await response("lookup_customer", result)
        #expect(r["content"]?[0]?["text"] == "Ada: card [REDACTED:card], backup [REDACTED:card].")
        #expect(r["content"]?[0]?["type"] == "text")
        #expect(r["content"]?[1]?["resource"]?["text"] == "[REDACTED:card]")
        #expect(r["content"]?[1]?["resource"]?["uri"] == "mem://4111111111111111", "uri is structure, left alone")
        #expect(r["structuredContent"]?["customer"]?["card"] == "[REDACTED:card]")
        #expect(r["structuredContent"]?["customer"]?["history"]?[0]?["card"] == "[REDACTED:card]")
        #expect(r["structuredContent"]?["customer"]?["name"] == "Ada")
        #expect(r["structuredContent"]?["type"] == "[REDACTED:card]", "structuredContent is data: every string")
        #expect(r["structuredContent"]?["count"] == 3)
    }

    @Test func luhnInvalidDigitRunsAreLeftAlone() async throws {
        let text = "order 4111 1111 1111 1112, phone 555-0100, id 12345678901234567890, x4111111111111111"
        let r = try await response("lookup_order", ["content": [["type": "text", "text": .string(text)]]])
        #expect(r["content"]?[0]?["text"] == .string(text))
    }

    @Test func toolGlobsScopeRules() async throws {
        let text = "card 4111111111111111 mail ada@example.org ssn 123-45-6789"
        let result: JSON = ["content": [["type": "text", "text": .string(text)]], "isError": false]
        let other = try await response("weather", result)
        #expect(other["content"]?[0]?["text"] == "card 4111111111111111 mail [REDACTED:email] ssn 123-45-6789")
        #expect(other["isError"] == false)
        let hr = try await response("hr.ssn", result)
        #expect(hr["content"]?[0]?["text"] == "card 4111111111111111 mail [REDACTED:email] ssn ***")
        let lookup = try await response("lookup_x", result)
        #expect(lookup["content"]?[0]?["text"] == "card [REDACTED:card] mail [REDACTED:email] ssn 123-45-6789")
    }

    @Test func requestArgumentsPassUnchanged() async throws {
        let p = try instance("redact", config: Self.config)
        let args: JSON = ["card": "4111111111111111", "mail": "ada@example.org"]
        let r = try await p.ok("request", ["tool": "lookup_customer", "backend": "demo", "arguments": args])
        #expect(r["arguments"] == args)
    }

    @Test func invalidRegexIsRefusedNamingThePattern() throws {
        let message = try creationError(
            "redact", config: ["rules": [["patterns": [["name": "broken_one", "regex": "(unclosed"]]]]])
        #expect(message.contains("broken_one"), "\(message)")
        #expect(message.contains("invalid regex"), "\(message)")
    }

    @Test func unknownBuiltinIsRefused() throws {
        let message = try creationError("redact", config: ["rules": [["patterns": [["name": "p", "builtin": "iban"]]]]])
        #expect(message.contains("unknown builtin \"iban\""), "\(message)")
    }
}
