import AsyncHTTPClient
import Foundation
import MCPGJSON
import Testing

@testable import MCPClient

/// The three ways to reach everything.py.
enum Kind: String, CaseIterable, Sendable {
    case stdio, http, sse
}

/// A started client, its upstream (for http/sse) and what it logged.
struct Harness: Sendable {
    let client: MCPClient
    let server: UpstreamServer?
    let log: LogRecorder

    /// Starts the upstream (unless stdio) and a client for it, runs `body`, then closes both, also on failure.
    static func with(
        _ kind: Kind, arguments: [String] = [], environment: [String: String] = [:],
        configure: (inout MCPClient.Config) -> Void = { _ in }, _ body: (Harness) async throws -> Void
    ) async throws {
        let server: UpstreamServer? =
            kind == .stdio ? nil : try await UpstreamServer.start(kind.rawValue, arguments: arguments)
        let config = server?.config(configure: configure) ?? Upstream.stdio(arguments, configure: configure)
        let log = LogRecorder()
        let client = try MCPClient(config: config, environment: { environment[$0] }, log: log.function)
        client.start()
        let h = Harness(client: client, server: server, log: log)
        do {
            try await body(h)
        } catch {
            await client.close()
            server?.stop()
            throw error
        }
        await client.close()
        server?.stop()
    }

    func call(_ name: String, _ arguments: JSON = [:], hooks: MCPClient.CallHooks? = nil) async throws -> JSON {
        try await client.request("tools/call", params: ["name": .string(name), "arguments": arguments], hooks: hooks)
    }
}

/// The code of an `MCPClientError` thrown by `body`, or nil.
func errorCode(_ body: () async throws -> some Any) async -> Int? {
    do {
        _ = try await body()
        return nil
    } catch let e as MCPClientError {
        return e.code
    } catch {
        return nil
    }
}

// Serialized: each test starts Python processes that import the MCP SDK, which takes seconds of CPU; run in
// parallel on a small shared machine they would exceed any sane connect deadline.
@Suite("MCPClient against everything.py over stdio, Streamable HTTP and HTTP+SSE", .serialized)
struct MCPClientTests {
    /// PAGE-1, TOOL-2, PROMPT-2, RES-2, RES-4: every page is read (5 per page upstream), objects untouched.
    @Test(arguments: Kind.allCases) func listsReadEveryPageUntouched(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let tools = try await h.client.listTools()
            let names = tools.compactMap { $0["name"]?.stringValue }
            #expect(names.count == 28)
            #expect(Set(names).count == names.count)
            #expect(names.first == "echo")
            #expect(names.last == "filler_11")
            let decorated = try #require(tools.first { $0["name"] == "decorated" })
            #expect(decorated["title"] == "Decorated tool")
            #expect(
                decorated["annotations"]
                    == [
                        "title": "Decorated", "readOnlyHint": true, "destructiveHint": false, "idempotentHint": true,
                        "openWorldHint": false,
                    ])
            #expect(
                decorated["icons"]
                    == [["src": "data:image/png;base64,iVBORw0KGgo=", "mimeType": "image/png", "sizes": ["48x48"]]])
            let add = try #require(tools.first { $0["name"] == "add" })
            #expect(add["outputSchema"]?["required"] == ["sum"])

            let prompts = try await h.client.listPrompts()
            #expect(prompts.compactMap { $0["name"]?.stringValue } == ["greet", "plain"])
            #expect(prompts[0]["arguments"]?[0]?["required"] == true)
            let resources = try await h.client.listResources()
            #expect(resources.compactMap { $0["uri"]?.stringValue } == ["mem://hello", "mem://counter", "mem://blob"])
            let templates = try await h.client.listResourceTemplates()
            #expect(
                templates == [
                    [
                        "uriTemplate": "mem://items/{id}", "name": "item", "mimeType": "text/plain",
                        "description": "An item by id.",
                    ]
                ])
            #expect(h.client.serverInfo?.protocolVersion == (kind == .sse ? "2025-11-25" : "2025-11-25"))
        }
    }

    /// TOOL-5, TOOL-7, PROMPT-3, RES-3, COMP-1, ERR-2: results untouched; upstream errors keep their code.
    @Test(arguments: Kind.allCases) func callsRelayResultsAndErrors(kind: Kind) async throws {
        try await Harness.with(kind, arguments: ["--name", "up-\(kind.rawValue)"]) { h in
            #expect(try await h.call("echo", ["message": "hi"]).firstText == "up-\(kind.rawValue): hi")
            let sum = try await h.call("add", ["a": 2, "b": 3.5])
            #expect(
                sum == ["content": [["type": "text", "text": "{\"sum\": 5.5}"]], "structuredContent": ["sum": 5.5]])
            #expect(await errorCode { try await h.call("no_such_tool") } == -32602)

            let prompt = try await h.client.request(
                "prompts/get", params: ["name": "greet", "arguments": ["name": "Bo"]])
            #expect(prompt["messages"]?[0]?["content"]?["text"] == "Greet Bo in a friendly way.")
            #expect(await errorCode { try await h.client.request("prompts/get", params: ["name": "greet"]) } == -32602)

            let blob = try await h.client.request("resources/read", params: ["uri": "mem://blob"])
            #expect(blob["contents"]?[0]?["blob"] == "AAECAwQFBgc=")
            let item = try await h.client.request("resources/read", params: ["uri": "mem://items/42"])
            #expect(item["contents"]?[0]?["text"] == "item 42")
            #expect(
                await errorCode { try await h.client.request("resources/read", params: ["uri": "mem://none"]) }
                    == -32002)

            let styles = try await h.client.complete([
                "ref": ["type": "ref/prompt", "name": "greet"], "argument": ["name": "style", "value": "f"],
            ])
            #expect(styles["completion"]?["values"] == ["formal", "friendly", "funny"])
            let ids = try await h.client.complete([
                "ref": ["type": "ref/resource", "uri": "mem://items/{id}"], "argument": ["name": "id", "value": "2"],
            ])
            #expect(ids["completion"]?["values"] == ["2"])
        }
    }

    /// PROG-1, PROG-2, GW-5: the upstream sees our token; the caller gets its own back, in order.
    @Test(arguments: Kind.allCases) func progressIsRelayedWithTheCallersToken(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let received = Received()
            let hooks = MCPClient.CallHooks(progressToken: "client-7", notify: { received.append($0) })
            let result = try await h.call("slow", ["steps": 3, "delay_ms": 5], hooks: hooks)
            #expect(result.firstText == "done after 3 steps")
            let progress = received.all.filter { $0["method"]?.stringValue == "notifications/progress" }
            #expect(progress.count == 3)
            #expect(progress.map { $0["params"]?["progressToken"] } == ["client-7", "client-7", "client-7"])
            #expect(progress.compactMap { $0["params"]?["progress"]?.doubleValue } == [1, 2, 3])
            #expect(progress.last?["params"]?["message"] == "step 3")
        }
    }

    /// CANC-1, CANC-3: cancelling the calling Task sends notifications/cancelled, which stops the upstream's work.
    @Test(arguments: Kind.allCases) func cancellationReachesTheUpstream(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let started = Received()
            let hooks = MCPClient.CallHooks(progressToken: "wait", notify: { started.append($0) })
            let call = Task { try await h.call("wait_for_cancel", hooks: hooks) }
            #expect(await eventually { !started.all.isEmpty }, "the upstream never began the call")
            call.cancel()
            await #expect(throws: CancellationError.self) { try await call.value }
            let seen = try await eventually {
                let r = try await h.call("cancellations")
                return r["structuredContent"]?["cancelled"]?.arrayValue?.isEmpty == false
            }
            #expect(seen, "the upstream never recorded the cancellation")
        }
    }

    /// LIFE-10: a request past `timeout_ms` fails with -32004 and the upstream is told to stop.
    @Test(arguments: Kind.allCases) func timeoutFailsTheCallAndCancelsUpstream(kind: Kind) async throws {
        try await Harness.with(kind, configure: { $0.timeoutMs = 1500 }) { h in
            _ = try await h.call("echo", ["message": "connected"])
            let start = ContinuousClock.now
            await #expect(throws: MCPClientError.unavailable("upstream did not answer tools/call within 1500 ms")) {
                try await h.call("wait_for_cancel")
            }
            #expect(ContinuousClock.now - start < .seconds(4))
            let seen = try await eventually {
                try await h.call("cancellations")["structuredContent"]?["cancelled"]?.arrayValue?.isEmpty == false
            }
            #expect(seen)
        }
    }

    /// SAMP, ELIC, ROOTS, GW-6: the upstream's requests reach the call's handler; its answer goes back.
    @Test(arguments: Kind.allCases) func serverRequestsAreAnsweredThroughTheCall(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let asked = Received()
            let hooks = MCPClient.CallHooks(request: { method, params in
                asked.append(["method": .string(method), "params": params ?? .null])
                switch method {
                case "sampling/createMessage":
                    return ["role": "assistant", "content": ["type": "text", "text": "hi there"], "model": "m1"]
                case "elicitation/create":
                    return ["action": "accept", "content": ["name": "Ada"]]
                default:
                    return ["roots": [["uri": "file:///work", "name": "work"]]]
                }
            })
            #expect(try await h.call("sample", ["prompt": "say hi"], hooks: hooks).firstText == "sampled: hi there")
            let elicited = try await h.call("elicit", ["message": "Name?"], hooks: hooks)
            #expect(elicited["structuredContent"] == ["action": "accept", "content": ["name": "Ada"]])
            let roots = try await h.call("roots", hooks: hooks)
            #expect(roots["structuredContent"]?["roots"] == [["uri": "file:///work", "name": "work"]])
            let methods = asked.all.compactMap { $0["method"]?.stringValue }
            #expect(methods == ["sampling/createMessage", "elicitation/create", "roots/list"])
            #expect(asked.all[0]["params"]?["messages"]?[0]?["content"]?["text"] == "say hi")

            // A client error is relayed to the upstream as is: its tool then fails.
            let refusing = MCPClient.CallHooks(request: { _, _ in
                throw MCPClientError(code: -1, "User rejected sampling request")
            })
            #expect(await errorCode { try await h.call("sample", hooks: refusing) } != nil)
            // No handler: the upstream is answered -32601 at once, never left waiting.
            #expect(await errorCode { try await h.call("roots") } != nil)
            #expect(h.log.contains("upstream request not relayed") { $0.metadata["mcp.method"] == "roots/list" })
            #expect(try await h.call("echo", ["message": "still fine"]).firstText == "still fine")
        }
    }

    /// On stdio a request cannot be tied to one of several calls in flight: the upstream gets an error.
    @Test func stdioServerRequestWithSeveralCallsInFlightIsRefused() async throws {
        try await Harness.with(.stdio) { h in
            let called = Received()
            let hooks = MCPClient.CallHooks(request: { method, _ in
                called.append(.string(method))
                return ["roots": []]
            })
            let started = Received()
            var blocking = hooks
            blocking.progressToken = "wait"
            blocking.notify = { started.append($0) }
            let blocker = Task { [blocking] in try await h.call("wait_for_cancel", hooks: blocking) }
            #expect(await eventually { !started.all.isEmpty })
            let result: JSON? = try? await h.call("roots", hooks: hooks)
            #expect(result == nil || result?["isError"] == true)
            #expect(called.all.isEmpty)
            #expect(
                h.log.contains("upstream request not relayed") {
                    $0.metadata["mcp.reason"]?.contains("2 calls") == true
                })
            blocker.cancel()
            _ = try? await blocker.value
        }
    }

    /// RES-6: subscriptions reach the upstream; its updates come through events().
    @Test(arguments: Kind.allCases) func subscribedUpdatesArriveThroughEvents(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let events = EventLog(h.client)
            #expect(await events.saw(health: "up"))
            try await h.client.subscribe(uri: "mem://counter")
            #expect(h.client.subscriptions == ["mem://counter"])
            // On HTTP the update comes on the GET stream, which opens just after initialize: touch until seen.
            var updated: JSON?
            for _ in 0..<3 {
                _ = try await h.call("touch", ["uri": "mem://counter"])
                updated = await events.wait("notifications/resources/updated", within: 3)
                if case .some = updated { break }
            }
            #expect(updated?["params"] == ["uri": "mem://counter"], "events: \(events.names)")
            try await h.client.unsubscribe(uri: "mem://counter")
            #expect(h.client.subscriptions.isEmpty)
        }
    }

    /// TOOL-1: a tool added upstream is announced through events() and listed after.
    @Test(arguments: Kind.allCases) func listChangedArrivesThroughEvents(kind: Kind) async throws {
        try await Harness.with(kind) { h in
            let events = EventLog(h.client)
            // On HTTP the notification comes on the GET stream, which opens just after initialize: retry until seen.
            var changed = false
            for i in 0..<3 where !changed {
                _ = try await h.call("add_tool", ["name": .string("runtime_tool_\(i)")])
                changed = await events.saw("notifications/tools/list_changed", within: 3)
            }
            #expect(changed)
            let names = try await h.client.listTools().compactMap { $0["name"]?.stringValue }
            #expect(names.contains("runtime_tool_0"))
            #expect(try await h.call("runtime_tool_0").firstText == "runtime_tool_0")
        }
    }

    /// LOG-1: log_level is set upstream; messages on a call's HTTP stream go to the call, stdio ones to the log.
    @Test(arguments: Kind.allCases) func logMessages(kind: Kind) async throws {
        try await Harness.with(kind, configure: { $0.logLevel = "warning" }) { h in
            let received = Received()
            let result = try await h.call(
                "log", ["level": "error", "message": "disk on fire"], hooks: .init(notify: { received.append($0) }))
            #expect(result["structuredContent"]?["setLevel"] == "warning")
            if kind == .http {
                let message = received.all.first { $0["method"]?.stringValue == "notifications/message" }
                #expect(message?["params"] == ["level": "error", "logger": "everything", "data": "disk on fire"])
            } else {
                let logged = await eventually {
                    h.log.contains("upstream log message") { $0.metadata["mcp.data"] == "disk on fire" }
                }
                #expect(logged)
                #expect(h.log.all.first { $0.message == "upstream log message" }?.level == .error)
            }
        }
    }

    /// The stdio process sees only the allowed and the explicit variables.
    @Test func stdioEnvironmentIsAllowlisted() async throws {
        let environment = ["MCPG_T_ALLOWED": "yes", "MCPG_T_SECRET": "hidden", "PATH": "/usr/bin"]
        try await Harness.with(
            .stdio, environment: environment,
            configure: {
                $0.envAllow = ["MCPG_T_ALLOWED", "MCPG_T_MISSING"]
                $0.env = ["MCPG_T_EXPLICIT": "set", "MCPG_T_ALLOWED": "overridden"]
            }
        ) { h in
            let env = try #require(try await h.call("env")["structuredContent"]?["env"]?.objectValue)
            #expect(env["MCPG_T_ALLOWED"] == "overridden")
            #expect(env["MCPG_T_EXPLICIT"] == "set")
            #expect(env["MCPG_T_SECRET"] == nil)
            #expect(env["MCPG_T_MISSING"] == nil)
            #expect(env["PATH"] == nil)
            #expect(env["HOME"] == nil)
            // Anything else Python itself put there is not from the gateway.
            #expect(env.keys.filter { $0.hasPrefix("MCPG") }.sorted() == ["MCPG_T_ALLOWED", "MCPG_T_EXPLICIT"])
        }
    }

    /// STDIO-3: stderr lines reach the log; `cwd` is where the process runs.
    @Test func stdioStderrGoesToTheLogAndCwdIsUsed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mcp-cwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let script = """
            import os, sys, json
            sys.stderr.write("starting in " + os.getcwd() + "\\n"); sys.stderr.flush()
            for line in sys.stdin:
                m = json.loads(line)
                if m.get("method") == "initialize":
                    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "2025-06-18",
                        "capabilities": {"tools": {}}, "serverInfo": {"name": "tiny", "version": "0"}}}), flush=True)
                elif m.get("method") == "tools/list":
                    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"tools": [{"name": os.getcwd(),
                        "inputSchema": {"type": "object"}}]}}), flush=True)
            """
        let config = MCPClient.Config(command: [Upstream.python, "-c", script], cwd: dir.path)
        let log = LogRecorder()
        let client = try MCPClient(config: config, log: log.function)
        client.start()
        let tools = try await client.listTools()
        let real = dir.resolvingSymlinksInPath().path
        #expect(tools.first?["name"]?.stringValue.map { $0 == real || $0 == dir.path } == true)
        #expect(client.serverInfo?.protocolVersion == "2025-06-18")
        #expect(client.serverCapabilities?["prompts"] == nil)
        #expect(try await client.listPrompts().isEmpty, "no prompts capability: no prompts/list sent")
        #expect(
            await eventually {
                log.contains("upstream stderr") { $0.metadata["mcp.stderr"]?.hasPrefix("starting in") == true }
            })
        await client.close()
        #expect(log.contains("upstream process ended"))
    }

    /// LIFE-3: an upstream that answers with an unknown protocol version is refused with a clear reason.
    @Test func unsupportedProtocolVersionIsRefused() async throws {
        let script = """
            import sys, json
            for line in sys.stdin:
                m = json.loads(line)
                if m.get("method") == "initialize":
                    print(json.dumps({"jsonrpc": "2.0", "id": m["id"], "result": {"protocolVersion": "1999-01-01",
                        "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}}), flush=True)
            """
        let client = try MCPClient(
            config: .init(command: [Upstream.python, "-c", script], restart: .init(initialMs: 5000, maxMs: 5000)),
            log: { _, _, _ in })
        client.start()
        do {
            _ = try await client.listTools()
            Issue.record("listTools succeeded against an unsupported version")
        } catch let e as MCPClientError {
            #expect(e.code == -32004)
            #expect(e.message.contains("1999-01-01"))
            #expect(e.message.contains("2025-11-25"))
        }
        await client.close()
    }

    /// A killed stdio upstream fails the call in flight at once (-32004), is restarted with backoff, and
    /// events() reports down, up and list_changed.
    @Test func killedStdioUpstreamFailsInFlightCallsAndRestarts() async throws {
        try await Harness.with(.stdio) { h in
            let events = EventLog(h.client)
            #expect(await events.saw(health: "up"))
            try await h.client.subscribe(uri: "mem://counter")
            let started = Received()
            let hooks = MCPClient.CallHooks(progressToken: "wait", notify: { started.append($0) })
            let inFlight = Task { try await h.call("wait_for_cancel", hooks: hooks) }
            #expect(await eventually { !started.all.isEmpty })
            let start = ContinuousClock.now
            #expect(await errorCode { try await h.call("crash") } == -32004)
            do {
                _ = try await inFlight.value
                Issue.record("the call in flight succeeded")
            } catch let e as MCPClientError {
                #expect(e.code == -32004)
                #expect(e.message.contains("exited with status 3"))
            }
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(await events.saw(health: "down"))
            #expect(await events.saw("notifications/mcpg/health", "reason", "reconnected", within: 20))
            #expect(await events.saw("notifications/tools/list_changed"))
            #expect(try await h.call("echo", ["message": "back"]).firstText == "back")
            // The subscription was renewed on the new process.
            _ = try await h.call("touch", ["uri": "mem://counter"])
            #expect(await events.saw("notifications/resources/updated"))
            let names = events.names
            let down = try #require(names.firstIndex(of: "health:down"))
            #expect(names[down...].contains("health:up"))
        }
    }

    /// A stopped HTTP upstream fails the call in flight with -32004, and the client reconnects when it is back.
    @Test func stoppedHTTPUpstreamRecovers() async throws {
        let first = try await UpstreamServer.start("http")
        let port = first.port
        let client = try MCPClient(config: first.config(), log: { _, _, _ in })
        client.start()
        let events = EventLog(client)
        #expect(
            try await client.request("tools/call", params: ["name": "echo", "arguments": ["message": "a"]]).firstText
                == "a")
        let started = Received()
        let hooks = MCPClient.CallHooks(progressToken: "wait", notify: { started.append($0) })
        let inFlight = Task {
            try await client.request("tools/call", params: ["name": "wait_for_cancel"], hooks: hooks)
        }
        #expect(await eventually { !started.all.isEmpty })
        first.stop()
        #expect(await errorCode { try await inFlight.value } == -32004)
        #expect(await events.saw(health: "down"))
        #expect(await errorCode { try await client.listTools() } == -32004)
        let second = try await UpstreamServer.start("http", port: port)
        #expect(await events.saw("notifications/mcpg/health", "reason", "reconnected", within: 20))
        #expect(
            try await client.request("tools/call", params: ["name": "echo", "arguments": ["message": "b"]]).firstText
                == "b")
        await client.close()
        second.stop()
    }

    /// Nothing listens at the URL: calls fail fast with -32004 and the reason, and health says down.
    @Test(arguments: [Kind.http, .sse]) func unreachableURLFailsFast(kind: Kind) async throws {
        let port = try freePort()
        let path = kind == .http ? "mcp" : "sse"
        let config = MCPClient.Config(
            transport: kind == .http ? .http : .sse, url: "http://127.0.0.1:\(port)/\(path)", connectTimeoutMs: 3000)
        let client = try MCPClient(config: config, log: { _, _, _ in })
        client.start()
        let events = EventLog(client)
        let start = ContinuousClock.now
        do {
            _ = try await client.listTools()
            Issue.record("listTools succeeded with nothing listening")
        } catch let e as MCPClientError {
            #expect(e.code == -32004)
            #expect(e.message.contains("refused"))
        }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(await events.saw(health: "down"))
        await client.close()
    }

    /// HTTP-12, HTTP-15: the session id, protocol version, static headers and bearer token go on every request;
    /// the token is never logged.
    @Test func httpHeadersReachTheUpstream() async throws {
        let token = "tok-0123456789abcdef"
        try await Harness.with(
            .http, environment: ["MCPG_T_TOKEN": token],
            configure: {
                $0.headers = ["X-Tenant": "acme"]
                $0.bearerTokenEnv = "MCPG_T_TOKEN"
            }
        ) { h in
            let headers = try #require(try await h.call("headers")["structuredContent"]?["headers"]?.objectValue)
            #expect(headers["authorization"] == .string("Bearer \(token)"))
            #expect(headers["x-tenant"] == "acme")
            #expect(headers["mcp-protocol-version"] == "2025-11-25")
            #expect(headers["mcp-session-id"]?.stringValue?.isEmpty == false)
            #expect(
                !h.log.all.contains { line in
                    line.message.contains(token) || line.metadata.values.contains { $0.contains(token) }
                })
        }
    }

    /// HTTP-13, HTTP-9: a server without a GET stream (405) forgets the idle session; the next call gets 404,
    /// and the client initializes a new session and retries once, transparently.
    @Test func expiredHTTPSessionIsRenewed() async throws {
        try await Harness.with(.http, arguments: ["--session-idle-timeout", "1", "--no-get-stream"]) { h in
            #expect(try await h.call("echo", ["message": "one"]).firstText == "one")
            let first = try await h.call("headers")["structuredContent"]?["headers"]?["mcp-session-id"]
            try await Task.sleep(for: .milliseconds(2500))
            #expect(try await h.call("echo", ["message": "two"]).firstText == "two")
            let second = try await h.call("headers")["structuredContent"]?["headers"]?["mcp-session-id"]
            #expect(first?.stringValue?.isEmpty == false)
            #expect(second?.stringValue?.isEmpty == false)
            #expect(first != second)
            #expect(h.log.contains("upstream session expired; initializing a new one"))
        }
    }

    /// LIFE-9: closing a stdio client closes the process's stdin, and the process exits on its own (status 0).
    @Test func closingEndsTheStdioProcessGracefully() async throws {
        let log = LogRecorder()
        let client = try MCPClient(config: Upstream.stdio(), log: log.function)
        client.start()
        _ = try await client.listTools()
        await client.close()
        let ended = log.all.first { $0.message == "upstream process ended" }
        #expect(ended?.metadata["mcp.exit"] == "upstream exited with status 0")
        #expect(await errorCode { try await client.listTools() } == -32004)
    }

    /// HTTP-14: closing an HTTP client DELETEs its session, which the upstream then no longer knows (404).
    @Test func closingDeletesTheHTTPSession() async throws {
        let server = try await UpstreamServer.start("http")
        defer { server.stop() }
        let client = try MCPClient(config: server.config(), log: { _, _, _ in })
        client.start()
        let headers = try await client.request("tools/call", params: ["name": "headers"])
        let session = try #require(headers["structuredContent"]?["headers"]?["mcp-session-id"]?.stringValue)
        await client.close()
        var request = HTTPClientRequest(url: server.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        request.headers.add(name: "Mcp-Session-Id", value: session)
        request.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
        request.body = .bytes(Array(#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.utf8))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status.code == 404)
    }

    /// create does not block: a call made before the first connection is up waits for it.
    @Test func callsRightAfterStartWaitForTheFirstConnection() async throws {
        try await Harness.with(.stdio) { h in
            let text = try await h.call("echo", ["message": "first"]).firstText
            #expect(text == "first")
        }
    }
}

/// A TCP port nothing listens on (bound, then closed).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw UpstreamError("socket failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
            bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
        }
    }
    guard bound else { throw UpstreamError("bind failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
