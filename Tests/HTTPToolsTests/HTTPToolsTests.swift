import Foundation
import MCPGJSON
import Testing

@testable import HTTPTools

/// Builds the tools of an `http` config given as JSON text.
func makeTools(_ config: String) throws -> (HTTPCaller, [String: HTTPTool]) {
    let decoded = try JSONDecoder().decode(HTTPToolsConfig.self, from: Data(config.utf8))
    let (caller, tools) = try decoded.build()
    return (caller, Dictionary(uniqueKeysWithValues: tools.map { ($0.name, $0) }))
}

func configError(_ config: String) -> String? {
    do {
        _ = try makeTools(config)
        return nil
    } catch let e as HTTPToolsError {
        return e.message
    } catch {
        return "\(error)"
    }
}

extension JSON {
    var resultText: String { self["content"]?[0]?["text"]?.stringValue ?? "" }
    var isErrorResult: Bool { self["isError"]?.boolValue == true }
}

/// The server's `/stats`.
func stats(_ server: HTTPTestServer) async throws -> JSON {
    let (caller, _) = try makeTools(#"{"tools": [{"name": "x", "url": "http://127.0.0.1/"}]}"#)
    defer { Task { await caller.shutdown() } }
    let r = try await caller.send(OutgoingRequest(method: "GET", url: server.base + "/stats"), auth: nil)
    return try JSON.parse(r.body)
}

@Suite("HTTP tools against a local HTTP server")
struct HTTPToolsTests {
    // TOOL-11: an argument stays inside its path segment; `../admin` cannot climb out.
    @Test func pathPlaceholdersArePercentEncodedAsOneSegment() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"{"base_url": "\#(server.base)", "tools": [{"name": "file", "url": "/echo/files/{name}/raw?v={v}"}]}"#)
        let tool = try #require(tools["file"])
        func path(_ name: String) async throws -> JSON {
            let r = try await caller.call(tool, arguments: ["name": .string(name), "v": "a&b=c"])
            #expect(!r.isErrorResult, "\(r)")
            return try JSON.parse(r.resultText)
        }
        let climbing = try await path("../admin")
        #expect(climbing["path"] == "/echo/files/..%2Fadmin/raw")
        #expect(climbing["query"] == "v=a%26b%3Dc")
        #expect(try await path("..")["path"] == "/echo/files/%2E%2E/raw")
        #expect(try await path("a b/ü?#")["path"] == "/echo/files/a%20b%2F%C3%BC%3F%23/raw")
        #expect(try await path("v1.2~x_y-z")["path"] == "/echo/files/v1.2~x_y-z/raw")
        await caller.shutdown()
    }

    @Test func queryHeaderAndBodyMapping() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)/", "headers": {"X-Static": "s1"}, "tools": [
              {"name": "search", "url": "echo/search", "query": {"q": "{term}", "tag": "{tags}", "fixed": "1",
               "page": "p{page}"}, "headers": {"X-Trace": "{trace}", "X-Both": "t-{term}"},
               "params": {"tags": {"type": "array", "items": {"type": "string"}}, "page": {"type": "integer"}},
               "required": ["term"]},
              {"name": "create", "method": "POST", "url": "echo/items/{kind}",
               "params": {"count": {"type": "integer"}, "label": {"type": "string"}}},
              {"name": "templated", "method": "PUT", "url": "echo/t",
               "body": {"item": {"n": "{count}", "label": "x-{label}", "missing": "{absent}"}, "list": ["{count}"]},
               "params": {"count": {"type": "integer"}}},
              {"name": "form", "method": "POST", "url": "echo/f", "body_encoding": "form",
               "body": {"a": "{a}", "b": "const"}}
            ]}
            """#)
        let search = try await caller.call(
            try #require(tools["search"]), arguments: ["term": "x y", "tags": ["a", "b"], "page": 2, "trace": "tr"])
        let s = try JSON.parse(search.resultText)
        #expect(s["method"] == "GET")
        #expect(s["args"]?["q"] == ["x y"])
        #expect(s["args"]?["tag"] == ["a", "b"])
        #expect(s["args"]?["fixed"] == ["1"])
        #expect(s["args"]?["page"] == ["p2"])
        #expect(s["headers"]?["x-trace"] == "tr")
        #expect(s["headers"]?["x-both"] == "t-x y")
        #expect(s["headers"]?["x-static"] == "s1")
        #expect(s["body"] == "")
        // An optional placeholder that is the whole value is left out when its argument is absent.
        let sparse = try JSON.parse(try await caller.call(try #require(tools["search"]), arguments: ["term": "z"]).resultText)
        #expect(sparse["args"]?["tag"] == nil)
        #expect(sparse["headers"]?["x-trace"] == nil)
        #expect(sparse["args"]?["page"] == ["p"])

        let create = try JSON.parse(
            try await caller.call(try #require(tools["create"]), arguments: ["kind": "book", "count": 3, "label": "L"])
                .resultText)
        #expect(create["path"] == "/echo/items/book")
        #expect(create["json"] == ["count": 3, "label": "L"])
        #expect(create["headers"]?["content-type"] == "application/json")

        let templated = try JSON.parse(
            try await caller.call(try #require(tools["templated"]), arguments: ["count": 5, "label": "q"]).resultText)
        #expect(templated["method"] == "PUT")
        #expect(templated["json"] == ["item": ["n": 5, "label": "x-q"], "list": [5]])

        let form = try JSON.parse(try await caller.call(try #require(tools["form"]), arguments: ["a": "1 & 2"]).resultText)
        let pairs = form["body"]?.stringValue?.split(separator: "&").map(String.init).sorted()
        #expect(pairs == ["a=1%20%26%202", "b=const"])
        #expect(form["headers"]?["content-type"] == "application/x-www-form-urlencoded")
        await caller.shutdown()
    }

    // W3C trace context: the traceparent/tracestate the gateway puts in the call's _meta become request headers.
    @Test func traceContextFromTheCallMetaBecomesHeaders() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "tools": [
              {"name": "plain", "url": "/echo/p"},
              {"name": "own", "url": "/echo/o", "headers": {"traceparent": "{tp}"}}
            ]}
            """#)
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        func headers(_ tool: String, _ arguments: JSONObject = [:], meta: JSONObject?) async throws -> JSON? {
            let r = try await caller.call(try #require(tools[tool]), arguments: arguments, meta: meta)
            #expect(!r.isErrorResult, "\(r)")
            return try JSON.parse(r.resultText)["headers"]
        }
        let both = try await headers("plain", meta: ["traceparent": .string(parent), "tracestate": "v=1", "other": "x"])
        #expect(both?["traceparent"] == .string(parent))
        #expect(both?["tracestate"] == "v=1")
        #expect(both?["other"] == nil)
        let none = try await headers("plain", meta: ["tracestate": "v=1"])
        #expect(none?["traceparent"] == nil)
        #expect(none?["tracestate"] == nil, "a tracestate without its traceparent means nothing")
        let unprintable = try await headers("plain", meta: ["traceparent": "00-x\r\nX-Injected: 1"])
        #expect(unprintable?["traceparent"] == nil)
        #expect(unprintable?["x-injected"] == nil)
        let configured = try await headers("own", ["tp": "mine"], meta: ["traceparent": .string(parent)])
        #expect(configured?["traceparent"] == "mine", "a header the tool sets itself is kept")
        await caller.shutdown()
    }

    // TOOL-3, TOOL-11: generated schemas, and arguments checked before any request.
    @Test func generatedInputSchemaIsEnforcedBeforeAnyRequest() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "tools": [{"name": "get", "url": "/echo/u/{id}", "query": {"v": "{verbose}"},
              "params": {"id": {"type": "integer", "minimum": 1}, "verbose": {"enum": ["yes", "no"]}}}]}
            """#)
        let tool = try #require(tools["get"])
        #expect(
            tool.inputSchema
                == [
                    "type": "object",
                    "properties": ["id": ["type": "integer", "minimum": 1], "verbose": ["enum": ["yes", "no"]]],
                    "required": ["id"], "additionalProperties": false,
                ])
        for (args, reason) in [
            (JSONObject(), "missing required property \"id\""), (["id": "7"], "expected integer"),
            (["id": 0], "at least 1"), (["id": 1, "verbose": "maybe"], "one of"), (["id": 1, "x": 1], "unknown property"),
        ] as [(JSONObject, String)] {
            await #expect(throws: InvalidArguments.self) { _ = try await caller.call(tool, arguments: args) }
            do {
                _ = try await caller.call(tool, arguments: args)
            } catch let e as InvalidArguments {
                #expect(e.message.contains(reason), "\(e.message)")
            }
        }
        #expect(try await stats(server)["counts"]?["echo"] == nil)
        let ok = try await caller.call(tool, arguments: ["id": 7, "verbose": "no"])
        #expect(try JSON.parse(ok.resultText)["path"] == "/echo/u/7")
        #expect(try await stats(server)["counts"]?["echo"] == 1)
        await caller.shutdown()
    }

    // TOOL-7, TOOL-8: JSON answers become structuredContent when an outputSchema is given.
    @Test func responseMapping() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "tools": [
              {"name": "user", "url": "/users/{id}",
               "outputSchema": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                                "required": ["id", "name"]}},
              {"name": "name", "url": "/users/{id}", "response": {"select": "/name"}},
              {"name": "tag", "url": "/users/{id}", "response": {"select": "tags.1"}},
              {"name": "nothing", "url": "/users/{id}", "response": {"select": "/nope"}},
              {"name": "wrong", "url": "/users/{id}", "outputSchema": {"type": "object", "required": ["email"]}},
              {"name": "text", "url": "/text"},
              {"name": "status", "url": "/status/{code}"}
            ]}
            """#)
        let user = try await caller.call(try #require(tools["user"]), arguments: ["id": "42"])
        #expect(!user.isErrorResult)
        #expect(user["structuredContent"] == ["id": "42", "name": "user-42", "tags": ["a", "b"]])
        #expect(try JSON.parse(user.resultText) == user["structuredContent"])
        let name = try await caller.call(try #require(tools["name"]), arguments: ["id": "9"])
        #expect(name.resultText == "user-9")
        #expect(name["structuredContent"] == nil)
        #expect(try await caller.call(try #require(tools["tag"]), arguments: ["id": "9"]).resultText == "b")
        let nothing = try await caller.call(try #require(tools["nothing"]), arguments: ["id": "9"])
        #expect(nothing.isErrorResult && nothing.resultText.contains("nothing at /nope"))
        let wrong = try await caller.call(try #require(tools["wrong"]), arguments: ["id": "9"])
        #expect(wrong.isErrorResult && wrong.resultText.contains("email"))
        #expect(try await caller.call(try #require(tools["text"]), arguments: [:]).resultText == "plain hello")
        let notFound = try await caller.call(try #require(tools["status"]), arguments: ["code": "404"])
        #expect(notFound.isErrorResult)
        #expect(notFound.resultText.hasPrefix("HTTP 404 Not Found: "))
        #expect(notFound.resultText.contains("status 404 body"))
        await caller.shutdown()
    }

    @Test func staticHeaderBearerAndBasicAuth() async throws {
        let server = try await HTTPTestServer.start()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("http-auth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "bearer-secret-token\n".write(to: dir.appendingPathComponent("token"), atomically: true, encoding: .utf8)
        try "key-123456".write(to: dir.appendingPathComponent("key"), atomically: true, encoding: .utf8)
        setenv("HTTP_TOOLS_TEST_PASSWORD", "wonder-pass", 1)
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "auth": {"type": "bearer", "token_file": "\#(dir.path)/token"}, "tools": [
              {"name": "bearer", "url": "/auth/bearer"},
              {"name": "bearer_leak", "url": "/status/403"},
              {"name": "header", "url": "/auth/header",
               "auth": {"type": "header", "name": "X-Api-Key", "value_file": "\#(dir.path)/key"}},
              {"name": "basic", "url": "/auth/basic",
               "auth": {"type": "basic", "username": "alice", "password_env": "HTTP_TOOLS_TEST_PASSWORD"}},
              {"name": "none", "url": "/auth/bearer", "auth": {"type": "none"}}
            ]}
            """#)
        for name in ["bearer", "header", "basic"] {
            let r = try await caller.call(try #require(tools[name]), arguments: [:])
            #expect(!r.isErrorResult, "\(name): \(r)")
            #expect(try JSON.parse(r.resultText)["kind"] == .string(name))
        }
        let none = try await caller.call(try #require(tools["none"]), arguments: [:])
        #expect(none.isErrorResult && none.resultText.hasPrefix("HTTP 401"))
        // The server echoes the Authorization header into its error body: the token must not reach the result.
        let leak = try await caller.call(try #require(tools["bearer_leak"]), arguments: [:])
        #expect(leak.isErrorResult)
        #expect(!leak.resultText.contains("bearer-secret-token"))
        #expect(leak.resultText.contains("[redacted]"))
        await caller.shutdown()

        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/", "auth": {"type": "bearer", "token_env": "HTTP_TOOLS_UNSET_VAR"}}]}"#)?
                .contains("HTTP_TOOLS_UNSET_VAR is not set") == true)
        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/", "auth": {"type": "basic", "username": "u"}}]}"#)?
                .contains("password_file or password_env") == true)
    }

    @Test func oauth2ClientCredentialsTokenIsCachedAndRefreshedOnce() async throws {
        // A long token lifetime here, so a slow machine does not reach the refresh window; expiry is tested below.
        let server = try await HTTPTestServer.start(["--oauth-ttl", "600"])
        setenv("HTTP_TOOLS_TEST_CLIENT_SECRET", "client-secret-xyz", 1)
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "auth": {"type": "oauth2", "token_url": "\#(server.base)/oauth/token",
              "client_id": "client-1", "client_secret_env": "HTTP_TOOLS_TEST_CLIENT_SECRET", "scopes": ["read", "write"]},
             "tools": [{"name": "call", "url": "/auth/oauth"}, {"name": "revoke", "method": "POST", "url": "/oauth/revoke"},
                       {"name": "body_auth", "url": "/auth/oauth",
                        "auth": {"type": "oauth2", "token_url": "\#(server.base)/oauth/token", "client_id": "client-1",
                                 "client_secret_env": "HTTP_TOOLS_TEST_CLIENT_SECRET", "client_auth": "body",
                                 "audience": "api"}},
                       {"name": "bad_client", "url": "/auth/oauth",
                        "auth": {"type": "oauth2", "token_url": "\#(server.base)/oauth/token", "client_id": "other",
                                 "client_secret_env": "HTTP_TOOLS_TEST_CLIENT_SECRET"}}]}
            """#)
        let call = try #require(tools["call"])
        // Concurrent first calls share one token request.
        try await withThrowingTaskGroup(of: JSON.self) { group in
            for _ in 0..<4 { group.addTask { try await caller.call(call, arguments: [:]) } }
            for try await r in group { #expect(!r.isErrorResult, "\(r)") }
        }
        #expect(try await stats(server)["tokens_issued"] == 1)
        #expect(try await stats(server)["last_token_form"] == ["grant_type": "client_credentials", "scope": "read write"])
        // Revoked upstream: the 401 fetches a new token once and the call succeeds.
        _ = try await caller.call(try #require(tools["revoke"]), arguments: [:])
        #expect(!(try await caller.call(call, arguments: [:])).isErrorResult)
        #expect(try await stats(server)["tokens_issued"] == 2)
        #expect(try await stats(server)["counts"]?["auth:oauth"] == 6)
        // expires_in 2 s: the token is replaced 1 s before it expires.
        let shortLived = try await HTTPTestServer.start(["--oauth-ttl", "2"])
        let (expiring, expiringTools) = try makeTools(
            #"""
            {"base_url": "\#(shortLived.base)", "auth": {"type": "oauth2", "token_url": "\#(shortLived.base)/oauth/token",
              "client_id": "client-1", "client_secret_env": "HTTP_TOOLS_TEST_CLIENT_SECRET"},
             "tools": [{"name": "call", "url": "/auth/oauth"}]}
            """#)
        let expiringCall = try #require(expiringTools["call"])
        #expect(!(try await expiring.call(expiringCall, arguments: [:])).isErrorResult)
        try await Task.sleep(for: .milliseconds(1100))
        #expect(!(try await expiring.call(expiringCall, arguments: [:])).isErrorResult)
        #expect(try await stats(shortLived)["tokens_issued"] == 2)
        await expiring.shutdown()

        let body = try await caller.call(try #require(tools["body_auth"]), arguments: [:])
        #expect(!body.isErrorResult, "\(body)")
        #expect(try await stats(server)["last_token_form"] == ["grant_type": "client_credentials", "audience": "api", "client_id": "client-1"])
        let bad = try await caller.call(try #require(tools["bad_client"]), arguments: [:])
        #expect(bad.isErrorResult && bad.resultText.contains("oauth2 token endpoint answered HTTP 401"))
        #expect(!bad.resultText.contains("client-secret-xyz"))
        await caller.shutdown()
    }

    @Test func idempotentRequestsAreRetriedWithBackoffAndPOSTIsNot() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "retries": 3, "retry_backoff_ms": 20, "tools": [
              {"name": "get", "url": "/flaky/{key}", "query": {"fail": "{fail}", "status": "{status}"}},
              {"name": "post", "method": "POST", "url": "/flaky/{key}", "query": {"fail": "{fail}"}, "body": {}},
              {"name": "put", "method": "PUT", "url": "/flaky/{key}", "query": {"fail": "{fail}", "status": "{status}"}, "body": {}}
            ]}
            """#)
        let started = ContinuousClock.now
        let get = try await caller.call(try #require(tools["get"]), arguments: ["key": "g", "fail": "3", "status": "503"])
        #expect(!get.isErrorResult)
        #expect(try JSON.parse(get.resultText)["attempts"] == 4)
        // 20 + 40 + 80 ms at least, plus jitter.
        #expect(ContinuousClock.now - started >= .milliseconds(140))
        let r429 = try await caller.call(try #require(tools["put"]), arguments: ["key": "p", "fail": "1", "status": "429"])
        #expect(!r429.isErrorResult)
        let dropped = try await caller.call(try #require(tools["get"]), arguments: ["key": "d", "fail": "1", "status": "0"])
        #expect(!dropped.isErrorResult, "\(dropped)")
        let exhausted = try await caller.call(try #require(tools["get"]), arguments: ["key": "x", "fail": "9", "status": "502"])
        #expect(exhausted.isErrorResult && exhausted.resultText.hasPrefix("HTTP 502"))
        let notRetried = try await caller.call(try #require(tools["get"]), arguments: ["key": "n", "fail": "9", "status": "500"])
        #expect(notRetried.isErrorResult)
        let post = try await caller.call(try #require(tools["post"]), arguments: ["key": "po", "fail": "1"])
        #expect(post.isErrorResult && post.resultText.hasPrefix("HTTP 503"))
        let counts = try await stats(server)["counts"]
        #expect(counts?["flaky:g"] == 4)
        #expect(counts?["flaky:p"] == 2)
        #expect(counts?["flaky:x"] == 4)
        #expect(counts?["flaky:n"] == 1)
        #expect(counts?["flaky:po"] == 1)
        await caller.shutdown()
    }

    @Test func connectionRefusedIsRetriedThenAToolError() async throws {
        // A port that was just free: nothing listens there.
        let server = try await HTTPTestServer.start()
        let port = server.port
        server.stop()
        let (caller, tools) = try makeTools(
            #"{"retries": 2, "retry_backoff_ms": 10, "tools": [{"name": "get", "url": "http://127.0.0.1:\#(port)/x"}]}"#)
        let r = try await caller.call(try #require(tools["get"]), arguments: [:])
        #expect(r.isErrorResult)
        #expect(r.resultText.contains("connection refused"), "\(r.resultText)")
        await caller.shutdown()
    }

    @Test func timeoutEndsTheCall() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "timeout_ms": 300, "tools": [
              {"name": "slow", "url": "/slow", "query": {"ms": "{ms}"}},
              {"name": "patient", "url": "/slow", "query": {"ms": "{ms}"}, "timeout_ms": 3000}]}
            """#)
        let started = ContinuousClock.now
        let r = try await caller.call(try #require(tools["slow"]), arguments: ["ms": "20000"])
        #expect(r.isErrorResult)
        #expect(r.resultText.contains("no answer within 300 ms"), "\(r.resultText)")
        // Far below the server's 20 s: the timeout ended the call (loose, for loaded machines).
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(!(try await caller.call(try #require(tools["patient"]), arguments: ["ms": "500"])).isErrorResult)
        await caller.shutdown()
    }

    @Test func responsesLargerThanTheLimitAreToolErrors() async throws {
        let server = try await HTTPTestServer.start()
        let (caller, tools) = try makeTools(
            #"""
            {"base_url": "\#(server.base)", "max_response_bytes": 100000, "tools": [
              {"name": "big", "url": "/big", "query": {"bytes": "{bytes}", "chunked": "{chunked}"}}]}
            """#)
        let tool = try #require(tools["big"])
        let small = try await caller.call(tool, arguments: ["bytes": "100000"])
        #expect(!small.isErrorResult && small.resultText.utf8.count == 100000)
        let declared = try await caller.call(tool, arguments: ["bytes": "5000000"])
        #expect(declared.isErrorResult && declared.resultText.contains("larger than max_response_bytes (100000)"))
        let chunked = try await caller.call(tool, arguments: ["bytes": "50000000", "chunked": "1"])
        #expect(chunked.isErrorResult && chunked.resultText.contains("larger than max_response_bytes"))
        // The connection was closed: the server's write failed long before 50 MB.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await stats(server)["counts"]?["big:aborted"] == 1)
        // And the caller still works.
        #expect(!(try await caller.call(tool, arguments: ["bytes": "10"])).isErrorResult)
        await caller.shutdown()
    }

    @Test func badConfigIsRefusedWithTheReason() {
        #expect(configError(#"{"tools": [{"name": "a", "url": "http://{host}/x"}]}"#)?.contains("host must be fixed") == true)
        #expect(configError(#"{"tools": [{"name": "a", "url": "/x"}]}"#)?.contains("base_url is not set") == true)
        #expect(configError(#"{"tools": [{"name": "a", "url": "ftp://h/x"}]}"#)?.contains("not an http(s) URL") == true)
        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/"}, {"name": "a", "url": "http://h/"}]}"#)?
                .contains("defined twice") == true)
        #expect(configError(#"{"tools": [{"name": "a b", "url": "http://h/"}]}"#)?.contains("1-128 characters") == true)
        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/", "required": ["zz"]}]}"#)?.contains("zz") == true)
        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/", "auth": {"type": "magic"}}]}"#)?
                .contains("magic") == true)
        #expect(
            configError(#"{"tools": [{"name": "a", "url": "http://h/", "headers": {"Bad Name": "x"}}]}"#)?
                .contains("not a valid HTTP header name") == true)
    }
}
