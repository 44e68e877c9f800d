import Foundation
import MCPGJSON
import Testing

@testable import MCPClient

@Suite("MCPClient config, SSE parsing and URLs, without an upstream")
struct MCPClientConfigTests {
    func error(_ config: MCPClient.Config, environment: [String: String] = [:]) -> String? {
        do {
            _ = try MCPClient(config: config, environment: { environment[$0] }, log: { _, _, _ in })
            return nil
        } catch let e as MCPConfigError {
            return e.message
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test func decodesSnakeCaseKeysWithDefaults() throws {
        let minimal = try JSONDecoder().decode(MCPClient.Config.self, from: Data(#"{"command": ["srv"]}"#.utf8))
        #expect(minimal.transport == .stdio)
        #expect(minimal.timeoutMs == 30_000)
        #expect(minimal.connectTimeoutMs == 10_000)
        #expect(minimal.restart == .init(initialMs: 500, maxMs: 30_000))
        let http = try JSONDecoder().decode(MCPClient.Config.self, from: Data(#"{"url": "http://h/mcp"}"#.utf8))
        #expect(http.transport == .http)

        let full = try JSONDecoder().decode(
            MCPClient.Config.self,
            from: Data(
                #"""
                {"transport": "sse", "url": "https://h/sse", "headers": {"X-A": "1"}, "bearer_token_env": "T",
                 "tls": {"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem"}, "timeout_ms": 5,
                 "connect_timeout_ms": 6, "restart": {"initial_ms": 7, "max_ms": 8}, "log_level": "debug"}
                """#.utf8))
        #expect(
            full
                == MCPClient.Config(
                    transport: .sse, restart: .init(initialMs: 7, maxMs: 8), url: "https://h/sse",
                    headers: ["X-A": "1"],
                    bearerTokenEnv: "T", tls: .init(caFile: "ca.pem", certFile: "c.pem", keyFile: "k.pem"),
                    timeoutMs: 5,
                    connectTimeoutMs: 6, logLevel: "debug"))
        let stdio = try JSONDecoder().decode(
            MCPClient.Config.self,
            from: Data(#"{"command": ["a", "b"], "env": {"K": "v"}, "env_allow": ["PATH"], "cwd": "/tmp"}"#.utf8))
        #expect(stdio == MCPClient.Config(command: ["a", "b"], env: ["K": "v"], envAllow: ["PATH"], cwd: "/tmp"))
    }

    /// Every object in the schema closes its keys, and every key says what it does.
    @Test func schemaIsClosedAndDescribedAtEveryLevel() throws {
        func check(_ schema: JSON, _ path: String) {
            guard let properties = schema["properties"]?.objectValue else { return }
            #expect(schema["additionalProperties"] == false, "\(path)")
            for member in properties {
                #expect(member.value["description"]?.stringValue?.isEmpty == false, "\(path).\(member.key)")
                check(member.value, "\(path).\(member.key)")
            }
        }
        let schema = MCPClient.configSchema
        check(schema, "config")
        let keys = try #require(schema["properties"]?.objectValue?.keys)
        #expect(
            Set(keys) == [
                "transport", "command", "env", "env_allow", "cwd", "restart", "url", "headers", "bearer_token_file",
                "bearer_token_env", "tls", "timeout_ms", "connect_timeout_ms", "log_level",
            ])
    }

    @Test func rejectsBadCombinationsWithClearMessages() {
        #expect(error(.init(transport: .stdio))?.contains("needs command") == true)
        #expect(error(.init(transport: .stdio, command: [""]))?.contains("needs command") == true)
        #expect(error(.init(command: ["x"], url: "http://h"))?.contains("url is for transport http or sse") == true)
        #expect(error(.init(command: ["x"], envAllow: ["A=B"]))?.contains("env_allow") == true)
        #expect(error(.init(transport: .http))?.contains("needs url") == true)
        #expect(error(.init(url: "ftp://h"))?.contains("not an http(s) URL") == true)
        #expect(error(.init(url: "http://u:p@h/mcp"))?.contains("credentials") == true)
        #expect(error(.init(url: "http://h/mcp#x"))?.contains("fragment") == true)
        #expect(
            error(.init(transport: .http, cwd: "/", url: "http://h"))?.contains("cwd is for transport stdio") == true)
        #expect(error(.init(url: "http://h", headers: ["Bad Name": "x"]))?.contains("header name") == true)
        #expect(error(.init(url: "http://h", headers: ["X-A": "1\r\nX-B: 2"]))?.contains("line break") == true)
        #expect(error(.init(url: "http://h", headers: ["Mcp-Session-Id": "x"]))?.contains("set by the client") == true)
        #expect(
            error(.init(url: "http://h", bearerTokenFile: "/f", bearerTokenEnv: "T"))?.contains("not both") == true)
        #expect(error(.init(url: "http://h", tls: .init(caFile: "/ca")))?.contains("not https") == true)
        #expect(error(.init(url: "https://h", tls: .init(certFile: "/c")))?.contains("go together") == true)
        #expect(
            error(.init(url: "https://h", tls: .init(caFile: "/nonexistent/ca.pem")))?.contains("tls.ca_file") == true)
        #expect(error(.init(command: ["x"], timeoutMs: 0))?.contains("timeout_ms") == true)
        #expect(error(.init(command: ["x"], connectTimeoutMs: 0))?.contains("connect_timeout_ms") == true)
        #expect(error(.init(command: ["x"], restart: .init(initialMs: 10, maxMs: 5)))?.contains("restart") == true)
        #expect(error(.init(command: ["x"], logLevel: "loud"))?.contains("log_level") == true)
        #expect(
            error(.init(url: "http://h", bearerTokenEnv: "MCPG_SURELY_UNSET"))?.contains("is not set") == true)
        #expect(error(.init(url: "http://h", bearerTokenEnv: "T"), environment: ["T": "  "]) == "bearer token is empty")
        #expect(error(.init(url: "http://h", bearerTokenFile: "/nonexistent/token"))?.contains("cannot read") == true)
        #expect(error(.init(url: "http://h", bearerTokenEnv: "T"), environment: ["T": "tok"]) == nil)
        #expect(error(.init(command: ["x"])) == nil)
    }

    @Test func sseParserFollowsTheEventStreamRules() throws {
        var parser = SSEParser()
        var events = try parser.feed(Array("event: endpoint\r\ndata: /messages/?s=1\r\n\r\n: comment\n".utf8))
        #expect(events == [SSEEvent(event: "endpoint", data: "/messages/?s=1")])
        // Split across chunks, multi-line data, CR line ends, an id and a retry.
        events = try parser.feed(Array("data: {\"a\":".utf8))
        #expect(events.isEmpty)
        events = try parser.feed(Array("1}\ndata:second\rid: 7\nretry: 1500\n\n".utf8))
        #expect(events == [SSEEvent(event: "message", data: "{\"a\":1}\nsecond", id: "7", retry: 1500)])
        // An event without data is not dispatched, but its retry is reported.
        events = try parser.feed(Array("retry: 10\n\nevent: x\n\n".utf8))
        #expect(events == [SSEEvent(event: "", data: "", retry: 10)])
        var small = SSEParser(maxLine: 8)
        #expect(throws: SSEParser.TooLong.self) { try small.feed(Array("data: 0123456789".utf8)) }
    }

    @Test func endpointsResolveOnTheSameOriginOnly() throws {
        let base = try HTTPEndpoint("HTTP://127.0.0.1:8000/sse?x=1")
        #expect(base.description == "http://127.0.0.1:8000/sse?x=1")
        #expect(
            try base.resolve("/messages/?session_id=ab").description == "http://127.0.0.1:8000/messages/?session_id=ab")
        #expect(try base.resolve("messages?s=1").description == "http://127.0.0.1:8000/messages?s=1")
        #expect(try base.resolve("http://127.0.0.1:8000/m").description == "http://127.0.0.1:8000/m")
        #expect(throws: MCPConfigError.self) { try base.resolve("http://evil.example/m") }
        #expect(throws: MCPConfigError.self) { try base.resolve("//evil.example/m") }
        #expect(try HTTPEndpoint("https://h").description == "https://h/")
    }
}
